"""Kernel-gradient formulations of one convolution, side by side on this machine.

For each layer shape of the CIFAR ResNet-18 (batch = images x T), times XLA's forward, its input
gradient, its kernel gradient, and the kernel gradient summed over batch pieces of several sizes
(``snnjax.models.conv``'s ``"split"``), plus the im2col-matmul formulation. Prints a Markdown
table with ms per call and the ratio to XLA's kernel gradient (> 1: faster than XLA)::

    python benchmarks/conv_grad.py                   # batch 128 (= 32 images x T=4)
    python benchmarks/conv_grad.py --batch 32 --pieces 1,2,4,8,16
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.models import conv as conv_lib

# (input H = W, in channels, out channels, stride): the 3x3 convolutions of ResNet-18 (width 64).
SHAPES = [
    (32, 64, 64, 1),
    (32, 64, 128, 2),
    (16, 128, 128, 1),
    (16, 128, 256, 2),
    (8, 256, 256, 1),
    (8, 256, 512, 2),
    (4, 512, 512, 1),
]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128, help="examples x time steps of one layer call")
    p.add_argument("--pieces", default="2,4,8,16,32,64", help="examples per piece to try")
    p.add_argument("--repeats", type=int, default=5)
    return p.parse_args(argv)


def timed(fn, *args, repeats: int) -> float:
    """Median wall milliseconds of ``jit(fn)(*args)`` after one warm-up call."""
    fn = jax.jit(fn)
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main(argv=None) -> None:
    args = parse_args(argv)
    pieces = [int(p) for p in args.pieces.split(",")]
    print(
        f"{os.cpu_count()} CPUs, jax {jax.__version__} ({jax.default_backend()}), batch {args.batch}, "
        f"default split target {conv_lib.SPLIT_POSITIONS} output positions a piece\n"
    )
    print(
        "| H | C -> O | stride | fwd ms | input grad ms | XLA kernel grad ms | "
        + " | ".join(f"split {p} ms" for p in pieces)
        + " | default split (piece) | matmul ms |"
    )
    print("|" + "---|" * (8 + len(pieces)))
    rng = np.random.default_rng(0)
    for h, c, o, stride in SHAPES:
        x = jnp.asarray(rng.normal(size=(args.batch, h, h, c)).astype(np.float32))
        k = jnp.asarray(rng.normal(size=(3, 3, c, o)).astype(np.float32) * 0.05)
        g = jnp.asarray(rng.normal(size=(args.batch, h // stride, h // stride, o)).astype(np.float32))
        s, pad = (stride, stride), ((1, 1), (1, 1))

        def kernel_grad(conv):
            return lambda x, k, g: jax.vjp(lambda k_: conv(x, k_, s, pad), k)[1](g)[0]

        def split_with(piece: int) -> float:
            # The piece size is read when the backward pass is traced, i.e. at the first (jit) call.
            old, conv_lib.SPLIT_POSITIONS = conv_lib.SPLIT_POSITIONS, piece * g.shape[1] * g.shape[2]
            try:
                return timed(kernel_grad(conv_lib.conv_split_grad), x, k, g, repeats=args.repeats)
            finally:
                conv_lib.SPLIT_POSITIONS = old

        xla = conv_lib.conv_impl("split")  # forward and input gradient are XLA's own
        fwd = timed(lambda x, k: xla(x, k, s, pad), x, k, repeats=args.repeats)
        dx = timed(lambda x, k, g: jax.vjp(lambda x_: xla(x_, k, s, pad), x)[1](g)[0], x, k, g, repeats=args.repeats)
        ref = timed(
            kernel_grad(
                lambda x, k, s, p: jax.lax.conv_general_dilated(
                    x, k, s, p, dimension_numbers=conv_lib.DIMENSION_NUMBERS
                )
            ),
            x,
            k,
            g,
            repeats=args.repeats,
        )
        split = [split_with(p) if p <= args.batch else None for p in pieces]
        default_piece = conv_lib.split_piece(args.batch, g.shape[1] * g.shape[2])
        default = timed(kernel_grad(conv_lib.conv_split_grad), x, k, g, repeats=args.repeats)
        matmul = timed(kernel_grad(conv_lib.conv_matmul_grad), x, k, g, repeats=args.repeats)
        cells = " | ".join("-" if t is None else f"{t:.1f} ({ref / t:.2f}x)" for t in split)
        print(
            f"| {h} | {c} -> {o} | {stride} | {fwd:.1f} | {dx:.1f} | {ref:.1f} | {cells} | "
            f"{default:.1f} ({ref / default:.2f}x, {default_piece}) | {matmul:.1f} ({ref / matmul:.2f}x) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
