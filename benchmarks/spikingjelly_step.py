"""Time one SGD training step of a SpikingJelly Spiking ResNet (CIFAR layout), CPU or CUDA.

The SpikingJelly twin of ``benchmarks/train_step.py``; run it with the interpreter of the separate
SpikingJelly venv (see benchmarks/README.md). Prints ONE JSON line with the same fields.

Two model builds, same network (``--model``):

* ``own`` (default): written here with SpikingJelly's multi-step layers: ``layer.SeqToANNContainer``
  runs conv + BN on the merged ``[T*N, C, H, W]`` view (as snnjax does on ``[B*T, H, W, C]``) and
  ``neuron.LIFNode`` in step mode ``'m'`` runs the time loop.
* ``zoo``: SpikingJelly's own model zoo, ``spikingjelly.activation_based.model.spiking_resnet``
  (``SpikingResNet(BasicBlock, [2, 2, 2, 2])``) with its 7x7/2 stem replaced by the CIFAR 3x3/1 stem
  and its max-pool removed; its modules run in multi-step mode. The stem is run once on the static
  image (as in ``own`` and snnjax), then repeated over T.

Both use the IDSNN dynamics ``u = 0.25 u (1 - s) + I``: ``LIFNode(tau=4/3, decay_input=False,
v_threshold=0.5, v_reset=0.0, detach_reset=True, surrogate_function=surrogate.Rect(alpha=1))``
(gradient 1 on |x| < 0.5, snnjax's ``rectangular(1.0)``), BasicBlocks 64/128/256/512 with the
activation after the residual add, 1x1 conv + BN shortcuts, global average pool, mean over T,
linear head, BN gamma initialised to V_th = 0.5 (snnjax's SNN init).

Speed switches: ``--channels-last`` (NHWC memory format for the convolutions), ``--compile``
(``torch.compile`` of the model's forward; the step's backward is compiled with it),
``--threads``. On CUDA: ``--neuron-impl`` picks SpikingJelly 2.0's LIF kernel (it sets
``SJ_LIF_CUDA_IMPLEMENTATION``: ``auto`` = native CUDA if built from source, else Triton, else
torch), ``--dtype bfloat16|float16`` runs forward + loss under ``torch.autocast`` (float16 with a
``GradScaler``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import time
import types

import _timing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--depth", type=int, default=18, choices=(18, 34))
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16", "float16"),
        help="bfloat16/float16 = torch.autocast around forward + loss (AMP)",
    )
    p.add_argument("--model", default="own", choices=("own", "zoo"))
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format for model and input")
    p.add_argument("--compile", default="", help="torch.compile mode ('default', 'max-autotune-no-cudagraphs', ...)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument(
        "--neuron-impl",
        default="auto",
        choices=("auto", "cuda", "triton", "torch"),
        help="CUDA only: SpikingJelly's LIF kernel (SJ_LIF_CUDA_IMPLEMENTATION)",
    )
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument(
        "--serve",
        action="store_true",
        help="after the warm-up, one timed step per 'step' line on stdin (compare.py --interleave step)",
    )
    return p.parse_args(argv)


STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def _lif_kwargs():
    from spikingjelly.activation_based import surrogate

    return dict(
        tau=4.0 / 3.0,
        decay_input=False,
        v_threshold=0.5,
        v_reset=0.0,
        surrogate_function=surrogate.Rect(alpha=1.0),
        detach_reset=True,
    )


def build_model(depth: int, width: int, time_steps: int, model: str = "own"):
    """SpikingJelly Spiking ResNet taking static images ``[N, 3, 32, 32]``; logits ``[N, 10]``."""
    import torch
    from spikingjelly.activation_based import functional
    from torch import nn

    net = (build_zoo if model == "zoo" else build_own)(depth, width, time_steps)
    functional.set_step_mode(net, "m")
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 0.5)  # snnjax's SNN BN gamma init = V_th
            nn.init.constant_(m.bias, 0.0)
    return net, functional, torch


def build_own(depth: int, width: int, time_steps: int):
    from spikingjelly.activation_based import layer, neuron
    from torch import nn

    def lif() -> nn.Module:
        return neuron.LIFNode(**_lif_kwargs(), step_mode="m")

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

    return SpikingResNet()


def _import_zoo_spiking_resnet():
    """``spikingjelly.activation_based.model.spiking_resnet`` without the zoo package's ``__init__``.

    That ``__init__`` imports every zoo model (h5py, torchvision, ... for the transformers and
    dataset helpers); ``spiking_resnet.py`` itself needs only torch, SpikingJelly's layers and
    ``torchvision``'s ``load_state_dict_from_url`` (for pretrained ImageNet weights, unused here),
    which is ``torch.hub.load_state_dict_from_url``: a stand-in module provides it when torchvision
    is not installed.
    """
    import spikingjelly.activation_based as ab
    import torch

    name = "spikingjelly.activation_based.model"
    if name + ".spiking_resnet" in sys.modules:
        return sys.modules[name + ".spiking_resnet"]
    try:
        import torchvision  # noqa: F401
    except ImportError:
        for mod in ("torchvision", "torchvision.models", "torchvision.models.utils"):
            sys.modules.setdefault(mod, types.ModuleType(mod))
        sys.modules["torchvision.models.utils"].load_state_dict_from_url = torch.hub.load_state_dict_from_url
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = [os.path.join(os.path.dirname(ab.__file__), "model")]
        sys.modules[name] = pkg
    spec = importlib.util.spec_from_file_location(
        name + ".spiking_resnet", os.path.join(sys.modules[name].__path__[0], "spiking_resnet.py")
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def build_zoo(depth: int, width: int, time_steps: int):
    from spikingjelly.activation_based import layer, neuron
    from torch import nn

    if width != 64:
        raise ValueError("--model zoo: the zoo's ResNet has width 64 only")
    zoo = _import_zoo_spiking_resnet()
    block_counts = list(STAGES[depth])
    net = zoo.SpikingResNet(
        zoo.BasicBlock, block_counts, num_classes=10, spiking_neuron=neuron.LIFNode, **_lif_kwargs()
    )
    net.conv1 = layer.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)  # CIFAR stem
    net.maxpool = nn.Identity()  # no max-pool

    class CifarZoo(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, images):  # [N, 3, H, W]
            n = self.net
            x = n.bn1(n.conv1(images.unsqueeze(0)))  # stem once, [1, N, C, H, W]
            x = n.sn1(x.repeat(time_steps, 1, 1, 1, 1))
            x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
            x = n.avgpool(x).flatten(2)  # [T, N, 512]
            return n.fc(x).mean(dim=0)

    return CifarZoo()


def variant_name(args: argparse.Namespace) -> str:
    parts = [args.model]
    if args.channels_last:
        parts.append("cl")
    if args.compile:
        parts.append("compile" if args.compile == "default" else f"compile-{args.compile}")
    if args.device == "cuda":
        parts.append(args.neuron_impl)
    if args.threads != os.cpu_count():
        parts.append(f"threads{args.threads}")
    return "+".join(parts)


def measure(args: argparse.Namespace) -> dict:
    if args.device == "cuda":
        os.environ["SJ_LIF_CUDA_IMPLEMENTATION"] = args.neuron_impl  # read when the op is registered
    import numpy as np
    import spikingjelly

    net, functional, torch = build_model(args.depth, args.width, args.time_steps, args.model)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(dev, memory_format=fmt)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.normal(size=(args.batch, 3, 32, 32)).astype(np.float32))
    images = images.to(dev).contiguous(memory_format=fmt)
    labels = torch.from_numpy(rng.integers(0, 10, size=args.batch).astype(np.int64)).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    forward = torch.compile(net, mode=args.compile) if args.compile else net
    net.train()
    amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(args.dtype)
    scaler = torch.amp.GradScaler(args.device, enabled=args.dtype == "float16")

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(args.device, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss = loss_fn(forward(images).float(), labels)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        functional.reset_net(net)
        return loss.detach()

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    step()
    sync()
    first_s = time.perf_counter() - t0  # includes torch.compile / cudnn autotuning
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times, loss = _timing.timed_steps(
        lambda: float(step()), max(args.warmup - 1, 0), args.steps, args.serve
    )  # float(): host sync, as snnjax's
    median = float(np.median(times))
    rec = dict(
        framework="spikingjelly",
        spikingjelly=getattr(spikingjelly, "__version__", "2.0.0"),
        torch=torch.__version__,
        depth=args.depth,
        width=args.width,
        T=args.time_steps,
        batch=args.batch,
        dtype=args.dtype,
        variant=variant_name(args),
        model=args.model,
        device=args.device,
        step_s=median,
        step_times_s=times,
        cpu_s=float(np.median(cpu_times)),
        images_T_per_s=args.batch * args.time_steps / median,
        loss=loss,
        first_step_s=first_s,
        max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        threads=args.threads,
    )
    if args.device == "cuda":
        rec["peak_device_bytes"] = int(torch.cuda.max_memory_allocated())
        rec["gpu"] = torch.cuda.get_device_name(0)
        rec["neuron_impl"] = _selected_lif_impl(torch)
    return rec


def _selected_lif_impl(torch) -> str:
    """Name of the LIF kernel SpikingJelly picked on this GPU ('cuda', 'triton', 'torch'), if known."""
    try:
        from spikingjelly._ops.lif import _selection

        sel = _selection._selections.get(torch.cuda.current_device())
        return getattr(sel, "name", None) or os.environ.get("SJ_LIF_CUDA_IMPLEMENTATION", "auto")
    except Exception as e:  # noqa: BLE001 - informational only
        return f"unknown ({type(e).__name__})"


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(measure(parse_args(argv))), flush=True)


if __name__ == "__main__":
    main()
