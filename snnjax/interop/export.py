"""Write a trained run's ResNet as a PyTorch ``state_dict`` (SpikingJelly, torchvision, IDSNN or pycls layout).

    python -m snnjax.interop.export --workdir DIR --out model.pth --format spikingjelly [--stage student]

The network is rebuilt from the run's latest checkpoint of ``--stage`` (default: the run's result,
as ``python -m snnjax.analysis`` picks it). Beside ``model.pth`` goes ``model.pth.json``: what a
PyTorch user needs to run it, i.e. the architecture, the input normalisation (mean/std per channel of
NCHW images), and for an SNN the time steps and the SpikingJelly neuron that computes snnjax's::

    hard reset, decay d:  LIFNode(tau=1/(1-d), decay_input=False, v_threshold, v_reset=0.0)
    IF (d = 1):           IFNode(v_threshold, v_reset=0.0 | None)
    PLIF:                 ParametricLIFNode(decay_input=False, v_threshold, v_reset=0.0); w = -decay_logit

(SpikingJelly's multi-step model repeats a static image ``T`` times and averages ``fc`` over time,
as snnjax's direct encoding does.) A soft-reset LIF with ``d < 1`` has no SpikingJelly twin (its
reset is not decayed in snnjax): the weights are written and the sidecar says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from snnjax import trees
from snnjax.interop import layouts


def neuron_spec(model_cfg) -> dict[str, Any] | None:
    """SpikingJelly neuron arguments equivalent to snnjax's ``config.model`` neuron (None for an ANN)."""
    neuron = model_cfg.neuron
    if neuron == "relu":
        return None
    hard = model_cfg.reset == "hard"
    spec: dict[str, Any] = {
        "v_threshold": float(model_cfg.v_threshold),
        "v_reset": 0.0 if hard else None,
        "detach_reset": bool(model_cfg.detach_reset),
        "time_steps": int(model_cfg.time_steps),
    }
    decay = 1.0 if neuron == "if" else float(model_cfg.decay)
    if neuron == "plif":
        spec.update(node="ParametricLIFNode", decay_input=False)
    elif decay == 1.0:
        spec.update(node="IFNode")
    else:
        spec.update(node="LIFNode", tau=1.0 / (1.0 - decay), decay_input=False)
        if not hard:
            spec["warning"] = (
                "snnjax's soft reset subtracts the threshold after the decay (u = d*u - V_th*s + I); "
                "SpikingJelly's LIFNode decays it too, so this network has no exact SpikingJelly twin"
            )
    return spec


def export_run(workdir: str, out: str, fmt: str = "spikingjelly", stage: str | None = None) -> dict[str, Any]:
    """Export ``workdir``'s ``stage`` to ``out`` (``.pth``/``.pt``/``.safetensors``) in layout ``fmt``;
    returns the sidecar dict also written to ``out + '.json'``."""
    from snnjax.analysis.workdir import load_run
    from snnjax.interop import torch as tio
    from snnjax.train.summary import write_json

    if fmt not in layouts.LAYOUTS:
        raise ValueError(f"--format={fmt!r} is not valid; choose one of {list(layouts.LAYOUTS)}")
    if not tio.is_torch_file(out):
        raise ValueError(f"--out={out!r}: name a .pth, .pt or .safetensors file")
    run = load_run(workdir, stage)
    m = run.config.model
    if not str(m.name).startswith("resnet"):
        raise ValueError(f"{workdir} ({run.stage}) holds a {m.name}; only standard ResNets export to PyTorch layouts")
    state = tio.to_torch(run.variables, fmt)
    tio.save_state_dict(state, out)
    arch = layouts.arch_from_snnjax({p: tuple(v.shape) for p, v in trees.flatten(run.variables["params"]).items()})
    sidecar = {
        "format": fmt,
        "workdir": os.path.abspath(workdir),
        "stage": run.stage,
        "step": run.step,
        "model": m.to_dict(),
        "arch": {
            "depth": arch.depth,
            "width": arch.width,
            "in_channels": arch.in_channels,
            "num_classes": arch.num_classes,
            "stem": m.get("stem", "cifar"),
            "stem_padding": int(m.stem_padding),
        },
        "input": {
            "layout": "NCHW",
            "scale": "pixels / 255, then (x - mean) / std per channel",
            "mean": list(map(float, run.splits.mean)),
            "std": list(map(float, run.splits.std)),
        },
        "neuron": neuron_spec(m),
        "tensors": len(state),
    }
    write_json(out + ".json", sidecar)
    return sidecar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnjax.interop.export", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a finished (or checkpointed) run directory")
    parser.add_argument("--out", required=True, help="output file: .pth, .pt or .safetensors")
    parser.add_argument("--format", default="spikingjelly", choices=layouts.LAYOUTS, help="PyTorch layout")
    parser.add_argument("--stage", default=None, help="checkpoint stage (default: the run's result)")
    args = parser.parse_args(argv)
    try:
        sidecar = export_run(args.workdir, args.out, args.format, args.stage)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    neuron = sidecar["neuron"]
    what = "ANN" if neuron is None else f"SNN (T={neuron['time_steps']}, {neuron['node']})"
    print(f"wrote {args.out} ({sidecar['tensors']} tensors, {args.format} layout, {what}) and {args.out}.json")
    if neuron and "warning" in neuron:
        print(f"warning: {neuron['warning']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
