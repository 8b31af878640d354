"""Time one SGD training step of a SpikingJelly Spiking ResNet (CIFAR layout) on CPU.

The SpikingJelly twin of ``benchmarks/train_step.py``; run it with the interpreter of the separate
SpikingJelly venv (see benchmarks/README.md). Prints ONE JSON line with the same fields.

The model uses SpikingJelly's own multi-step API: ``layer.SeqToANNContainer`` runs conv + BN on the
merged ``[T*N, C, H, W]`` view (as snnjax does on ``[B*T, H, W, C]``) and ``neuron.LIFNode`` in step
mode ``'m'`` runs the time loop, with the IDSNN dynamics ``u = 0.25 u (1 - s) + I``:
``tau = 4/3`` (1 - 1/tau = 0.25), ``decay_input=False``, ``v_threshold=0.5``, hard reset to
``v_reset=0``, ``detach_reset=True`` and ``surrogate.Rect(alpha=1)`` (gradient 1 on |x| < 0.5,
snnjax's ``rectangular(1.0)``). Layout as snnjax's: 3x3 stem conv + BN run once on the static image
and repeated over T, no max-pool, BasicBlocks 64/128/256/512 with the activation after the
residual add, 1x1 conv + BN shortcuts, global average pool, mean over T, linear head.
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
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="bfloat16 = torch.autocast('cpu', bfloat16) around forward + loss",
    )
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    return p.parse_args(argv)


STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def build_model(depth: int, width: int, time_steps: int):
    """SpikingJelly Spiking ResNet taking static images ``[N, 3, 32, 32]``; logits ``[N, 10]``."""
    import torch
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    from torch import nn

    def lif() -> nn.Module:
        return neuron.LIFNode(
            tau=4.0 / 3.0,
            decay_input=False,
            v_threshold=0.5,
            v_reset=0.0,
            surrogate_function=surrogate.Rect(alpha=1.0),
            detach_reset=True,
            step_mode="m",
        )

    def conv_bn(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
        return layer.SeqToANNContainer(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, bias=False), nn.BatchNorm2d(cout)
        )

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1, self.sn1 = conv_bn(cin, cout, 3, stride), lif()
            self.conv2, self.sn2 = conv_bn(cout, cout, 3, 1), lif()
            self.shortcut = conv_bn(cin, cout, 1, stride) if (stride != 1 or cin != cout) else nn.Identity()

        def forward(self, x):  # x: [T, N, C, H, W] spikes
            return self.sn2(self.conv2(self.sn1(self.conv1(x))) + self.shortcut(x))

    class SpikingResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
            self.stem_sn = lif()
            blocks, cin = [], width
            for s, n in enumerate(STAGES[depth]):
                for b in range(n):
                    cout = width * 2**s
                    blocks.append(BasicBlock(cin, cout, 2 if s > 0 and b == 0 else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Linear(cin, 10)

        def forward(self, images):  # [N, 3, H, W]
            # Direct encoding: the stem sees the same image at every step, so it runs once.
            x = self.stem(images).unsqueeze(0).repeat(time_steps, 1, 1, 1, 1)
            x = self.blocks(self.stem_sn(x))
            return self.head(x.mean(dim=(3, 4)).mean(dim=0))

    net = SpikingResNet()
    functional.set_step_mode(net, "m")
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 0.5)  # snnjax's SNN BN gamma init = V_th
    return net, functional, torch


def measure(args: argparse.Namespace) -> dict:
    import numpy as np
    import spikingjelly

    net, functional, torch = build_model(args.depth, args.width, args.time_steps)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.normal(size=(args.batch, 3, 32, 32)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 10, size=args.batch).astype(np.int64))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
            loss = loss_fn(net(images).float(), labels)
        loss.backward()
        opt.step()
        functional.reset_net(net)
        return float(loss.detach())

    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        if i >= args.warmup:
            # CPU seconds (all threads) as well as wall time: on a shared machine the wall time
            # depends on other load, the CPU time much less.
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    median = float(np.median(times))
    return dict(
        framework="spikingjelly",
        spikingjelly=getattr(spikingjelly, "__version__", "2.0.0"),
        torch=torch.__version__,
        depth=args.depth,
        width=args.width,
        T=args.time_steps,
        batch=args.batch,
        dtype=args.dtype,
        variant="torch-m",
        step_s=median,
        step_times_s=times,
        cpu_s=float(np.median(cpu_times)),
        images_T_per_s=args.batch * args.time_steps / median,
        loss=loss,
        max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        threads=args.threads,
    )


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(measure(parse_args(argv))), flush=True)


if __name__ == "__main__":
    main()
