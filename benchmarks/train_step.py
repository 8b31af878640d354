"""Time one SGD training step of the snnjax Spiking ResNet (CIFAR layout) on this machine.

Prints ONE JSON line (see ``measure``): median step time after warm-up, images*T/s, compile time,
XLA's compiled memory (temp + arguments) and the process's peak RSS. Meant to run in its own
process (``benchmarks/compare.py`` starts it next to ``spikingjelly_step.py``)::

    python benchmarks/train_step.py --depth 18 --time-steps 4 --batch 32 --lif-impl fused

Inputs are static images ``[B, 32, 32, 3]`` fed at every step (direct encoding), 10 classes,
cross-entropy on the time-averaged logits, SGD with momentum 0.9, BN in training mode.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--depth", type=int, default=18, choices=(18, 34))
    p.add_argument("--width", type=int, default=64, help="channels of the first stage (64 = the paper)")
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--lif-impl", default="scan", choices=("scan", "fused"))
    p.add_argument("--unroll", type=int, default=1, help="lax.scan unroll over T (0 = full unroll)")
    p.add_argument("--remat", action="store_true", help="jax.checkpoint per residual block")
    p.add_argument(
        "--conv-grad",
        default="xla",
        choices=("xla", "split", "matmul", "auto"),
        help="kernel-gradient formulation (snnjax.models.conv); xla = the plain path",
    )
    p.add_argument(
        "--cpu-conv",
        default="ynn",
        choices=("ynn", "eigen"),
        help="XLA:CPU convolution library: ynn = jax's default, eigen = snnjax.runtime's (launch.py's)",
    )
    p.add_argument("--xla-flags", default="", help="appended to XLA_FLAGS before the backend starts")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    return p.parse_args(argv)


def measure(args: argparse.Namespace) -> dict:
    """Build, compile and time the step; returns the JSON record."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from snnjax.models import factory

    cfg = factory.model_config(
        name=f"resnet{args.depth}",
        width=args.width,
        time_steps=args.time_steps,
        dtype=args.dtype,
        lif_impl=args.lif_impl,
        unroll=args.unroll,
        remat=args.remat,
        conv_grad=args.conv_grad,
    )
    model = factory.build_model(cfg, num_classes=10)
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.normal(size=(args.batch, 32, 32, 3)).astype(np.float32))
    labels = jnp.asarray(rng.integers(0, 10, size=args.batch).astype(np.int32))
    variables = jax.jit(lambda k: model.init(k, images, train=False))(jax.random.PRNGKey(0))
    params, batch_stats = variables["params"], variables["batch_stats"]
    tx = optax.sgd(0.1, momentum=0.9)
    opt_state = tx.init(params)

    def step(params, batch_stats, opt_state, images, labels):
        def loss_fn(p):
            logits, new_state = model.apply(
                {"params": p, "batch_stats": batch_stats}, images, train=True, mutable=["batch_stats"]
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, new_state["batch_stats"]

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, loss

    t0 = time.perf_counter()
    lowered = jax.jit(step, donate_argnums=(0, 1, 2)).lower(params, batch_stats, opt_state, images, labels)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        params, batch_stats, opt_state, loss = compiled(params, batch_stats, opt_state, images, labels)
        loss.block_until_ready()
        if i >= args.warmup:
            # CPU seconds (all threads) as well as wall time: on a shared machine the wall time
            # depends on other load, the CPU time much less.
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    median = float(np.median(times))
    return dict(
        framework="snnjax",
        jax=jax.__version__,
        depth=args.depth,
        width=args.width,
        T=args.time_steps,
        batch=args.batch,
        dtype=args.dtype,
        variant=variant_name(args),
        cpu_conv=args.cpu_conv,
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        step_s=median,
        step_times_s=times,
        cpu_s=float(np.median(cpu_times)),
        images_T_per_s=args.batch * args.time_steps / median,
        compile_s=compile_s,
        loss=float(loss),
        xla_temp_bytes=int(mem.temp_size_in_bytes),
        xla_arg_bytes=int(mem.argument_size_in_bytes),
        max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        threads=os.cpu_count(),
    )


def variant_name(args: argparse.Namespace) -> str:
    """Short label of the speed switches, e.g. ``scan`` or ``fused+unroll+matmul``."""
    parts = [args.lif_impl]
    if args.unroll != 1:
        parts.append("unroll" if args.unroll == 0 else f"unroll{args.unroll}")
    if args.remat:
        parts.append("remat")
    if args.conv_grad != "xla":
        parts.append(args.conv_grad)
    if args.cpu_conv != "ynn":
        parts.insert(0, args.cpu_conv)
    if args.xla_flags:
        parts.append(args.xla_flags)
    return "+".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.xla_flags:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
    from snnjax import runtime  # imports jax but starts no backend

    if args.cpu_conv == "eigen" and not runtime.use_eigen_convolutions():
        raise RuntimeError("could not enable Eigen convolutions (see snnjax/runtime.py for when that is refused)")
    if args.cpu_conv == "ynn" and runtime.eigen_convolutions():
        raise RuntimeError(f"--cpu-conv ynn but XLA_FLAGS has {runtime.EIGEN_CONVOLUTIONS_FLAG}")
    print(json.dumps(measure(args)), flush=True)


if __name__ == "__main__":
    main()
