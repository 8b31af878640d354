"""Write a trained run's ResNet as a PyTorch ``state_dict`` (SpikingJelly, torchvision, IDSNN or pycls layout).

    python -m snnjax.interop.export --workdir DIR --out model.pth --format spikingjelly \
        [--stage student] [--step last|best|N] [--force]

The network is rebuilt from one checkpoint of ``--stage`` (default: the run's result, as
``python -m snnjax.analysis`` picks it): ``--step last`` (the default: the newest that restores, as
before this option existed), ``best`` (the step where the stage reached its best test accuracy, as
``summary.json``'s ``best_test_accuracy`` counts it) or a step number; the step exported is printed
and written to the sidecar. ``last`` is the default because ``best`` is chosen *on the test split*
(there is no validation split), so its test accuracy is an optimistic estimate of the network's; and
the last step is what the run's other results (analysis, spike counts) describe. An existing ``--out``
(or its sidecar) is refused unless ``--force``. Beside ``model.pth`` goes ``model.pth.json``: what a
PyTorch user needs to run it, i.e. the architecture, the input normalisation (mean/std per channel of
NCHW images), and for an SNN the time steps and the SpikingJelly neuron that computes snnjax's::

    hard reset, decay d:  LIFNode(tau=1/(1-d), decay_input=False, v_threshold, v_reset=0.0)
    IF (d = 1):           IFNode(v_threshold, v_reset=0.0 | None)
    PLIF:                 ParametricLIFNode(decay_input=False, v_threshold, v_reset=0.0); w = -decay_logit
    PSN:                  PSN(T) | MaskedPSN(k, T, lambda_init) | SlidingPSN(k, exp_init)  (weight, bias as
                          trained; MaskedPSN's buffers from config.model.psn_order / psn_lambda)

(SpikingJelly's multi-step model repeats a static image ``T`` times and averages ``fc`` over time,
as snnjax's direct encoding does.) A soft-reset LIF with ``d < 1`` has no SpikingJelly twin (its
reset is not decayed in snnjax): the weights are written and the sidecar says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import ml_collections

from snnjax import epoch_clock, neurons, trees
from snnjax.interop import layouts

STEP_WORDS = ("last", "best")
DEFAULT_STEP = "last"  # today's behaviour, and not selected on the test split (see the module doc)


def neuron_spec(model_cfg) -> dict[str, Any] | None:
    """SpikingJelly neuron arguments equivalent to snnjax's ``config.model`` neuron (None for an ANN)."""
    neuron = model_cfg.neuron
    if neuron == "relu":
        return None
    if neuron == "psn":
        return psn_spec(model_cfg)
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


def psn_spec(model_cfg) -> dict[str, Any]:
    """SpikingJelly's PSN module and arguments for snnjax's ``neuron='psn'`` (its surrogate is snnjax's
    ``surrogate``: SpikingJelly's PSN defaults to ``surrogate.ATan()``, snnjax's ``atan`` with alpha 2)."""
    variant = model_cfg.get("psn_variant", "full")
    steps, order = int(model_cfg.time_steps), int(model_cfg.get("psn_order", 2))
    spec: dict[str, Any] = {
        "node": {"full": "PSN", "masked": "MaskedPSN", "sliding": "SlidingPSN"}[variant],
        "time_steps": steps,
        "surrogate": f"{model_cfg.surrogate}({float(model_cfg.surrogate_param):g})",
        "note": "snnjax fires where H > 0, SpikingJelly where H >= 0 (they differ only at H = 0 exactly)",
    }
    if variant == "full":
        spec.update(T=steps)
    elif variant == "masked":
        spec.update(k=order, T=steps, lambda_init=float(model_cfg.get("psn_lambda", 1.0)))
    else:
        spec.update(k=order, exp_init=True, backend="gemm")
    return spec


def trained_psn_lambda(model_cfg, variables: dict[str, Any]):
    """``model_cfg`` with a ramped masked PSN's ``lambda`` (``psn_lambda_epochs`` > 0) fixed at the value
    its weights were trained with (the epoch last fed to ``variables``, :mod:`snnjax.epoch_clock`), so
    an export carries the ``lambda_`` the network ran with; any other model is returned as it is."""
    ramp = float(model_cfg.get("psn_lambda_epochs", 0.0))
    if model_cfg.get("neuron") != "psn" or model_cfg.get("psn_variant") != "masked" or ramp <= 0.0:
        return model_cfg
    epoch = epoch_clock.current_epoch(variables) or 0.0
    frozen = model_cfg.copy_and_resolve_references()
    frozen.psn_lambda, frozen.psn_lambda_epochs = float(neurons.ramped_psn_lambda(epoch, ramp)), 0.0
    return frozen


def refuse_overwrite(out: str, force: bool) -> None:
    """Raise a one-line ``FileExistsError`` when ``out`` or its sidecar exists and ``force`` is off.

    Worded as ``python -m snnjax.data.write_records`` words its refusal; the sidecar counts too, since
    a new ``.pth`` beside an old ``.pth.json`` would describe the wrong network.
    """
    if force:
        return
    for path in (out, out + ".json"):
        if os.path.exists(path):
            raise FileExistsError(
                f"--out {path} already exists. Fix: delete it, choose another --out, or pass --force to overwrite it."
            )


def parse_step(value: str, steps: list[int], where: str) -> str | int:
    """``'last'``, ``'best'`` or a step number from ``--step``; a one-line ``ValueError`` naming the
    value and the kept ``steps`` of ``where`` otherwise."""
    word = str(value).strip().lower()
    if word in STEP_WORDS:
        return word
    if word.isdigit():
        return int(word)
    raise ValueError(
        f"--step={value!r} is not valid; steps available in {where}: {steps}. Fix: pass one of them, last or best"
    )


def resolve_step(choice: str | int, steps: list[int], best_step: int, where: str) -> int:
    """The checkpoint step that ``choice`` (:func:`parse_step`'s ``best`` or a number) names among the
    kept ``steps`` (sorted) of ``where``; a one-line ``ValueError`` naming the steps available.

    ``best_step``: the step of the stage's best test accuracy, as the training loop recorded it in the
    checkpoint's meta (-1 when the stage was never evaluated; unused for a number).
    """
    available = f"steps available in {where}: {steps}"
    if choice == "best":
        if best_step < 0:
            raise ValueError(f"--step=best: no test accuracy was recorded for {where}; {available}. Fix: pass one")
        if best_step not in steps:
            # orbax keeps the latest of equally good checkpoints; the loop records the first.
            raise ValueError(
                f"--step=best: the best test accuracy was reached at step {best_step}, which is no longer kept; "
                f"{available}. Fix: pass one of them"
            )
        return best_step
    if choice not in steps:
        raise ValueError(f"--step={choice} is not a checkpoint; {available}. Fix: pass one of them, last or best")
    return int(choice)


def load_run_at(workdir: str, stage: str | None, step: str = DEFAULT_STEP, *, mesh: Any) -> tuple[Any, dict[str, Any]]:
    """The run's ``stage`` restored at the checkpoint ``step`` names (``--step``: last, best or a number),
    and how it was chosen (``choice``, ``steps`` kept, ``best_step``, ``best_test_accuracy``); its
    variables replicated over ``mesh`` (the exporting program's, built once by :func:`export_run`).

    :func:`snnjax.analysis.workdir.load_run` restores only the newest checkpoint; this is the same
    rebuild (the model from the config saved with the checkpoint, the data for its normalisation) at
    a chosen step. A bad ``step`` fails before the data is loaded or anything restored.
    """
    from snnjax import data as data_lib
    from snnjax import (
        methods,  # noqa: F401  (registers the methods' model families: models.build below)
        models,
        workdir_layout,
    )
    from snnjax.analysis.workdir import RestoredStage, choose_stage
    from snnjax.train import checkpoint as ckpt_lib
    from snnjax.train import setup

    stage = choose_stage(workdir, stage)
    ckpt_dir = workdir_layout.stage_checkpoints(workdir, stage)
    where = f"{workdir} ({stage})"
    ckpt = ckpt_lib.Checkpointer(ckpt_dir, async_save=False)
    try:
        steps = sorted(ckpt.all_steps())
        if not steps:
            raise FileNotFoundError(f"no checkpoints in {ckpt_dir}")
        choice = parse_step(step, steps, where)
        if isinstance(choice, int):
            resolve_step(choice, steps, -1, where)  # a missing step fails now, before the slow part
        stored = ckpt.read_config(steps[-1])
        if stored is None or "model" not in stored:
            raise FileNotFoundError(
                f"the checkpoint {ckpt_dir}/{steps[-1]} has no readable 'config' item. Fix: export a run "
                "written by snnjax.train.loop (it saves the config with every checkpoint)."
            )
        config = ml_collections.ConfigDict({**stored, "model": models.upgrade_legacy(stored["model"])})
        splits = data_lib.load_from_config(config.data)  # the normalisation the run trained with
        model = models.build(config.model, splits.num_classes)
        abstract = setup.plan(config, splits, model, mesh).abstract_state
        # The newest that restores, read-only (as load_run does): it is "last", and its meta records
        # the stage's best step. Another step is restored only when asked for.
        newest = ckpt.restore_newest(abstract, move_aside=False)
        if newest is None:
            raise FileNotFoundError(f"no checkpoint could be restored from {ckpt_dir}")
        restored_step, state, meta = newest
        best_step = int(meta.get("best_step", -1))
        if choice != "last":
            target = resolve_step(choice, steps, best_step, where)
            if target != restored_step:
                state, _ = ckpt.restore(target, abstract)
    finally:
        ckpt.close()
    chosen = {
        "choice": choice,
        "steps": steps,
        "best_step": best_step,
        "best_test_accuracy": float(meta.get("best_test_accuracy", -1.0)),
    }
    return RestoredStage(config, stage, int(state.step), model, state.variables, splits), chosen


def export_run(
    workdir: str,
    out: str,
    fmt: str = "spikingjelly",
    stage: str | None = None,
    step: str = DEFAULT_STEP,
    force: bool = False,
) -> dict[str, Any]:
    """Export ``workdir``'s ``stage`` at ``step`` (``last``, ``best`` or a number) to ``out``
    (``.pth``/``.pt``/``.safetensors``) in layout ``fmt``; returns the sidecar dict also written to
    ``out + '.json'``. An existing ``out`` or sidecar is refused unless ``force``."""
    from snnjax.interop import torch as tio
    from snnjax.train import mesh as mesh_lib
    from snnjax.train.run_outputs import write_json

    if fmt not in layouts.LAYOUTS:
        raise ValueError(f"--format={fmt!r} is not valid; choose one of {list(layouts.LAYOUTS)}")
    if not tio.is_torch_file(out):
        raise ValueError(f"--out={out!r}: name a .pth, .pt or .safetensors file")
    refuse_overwrite(out, force)  # before the (slow) restore: nothing is read that would be thrown away
    # The entry point of an export: placement decided here, once (this process's devices).
    run, chosen = load_run_at(workdir, stage, step, mesh=mesh_lib.make_mesh())
    m = run.config.model
    if not str(m.name).startswith("resnet"):
        raise ValueError(f"{workdir} ({run.stage}) holds a {m.name}; only standard ResNets export to PyTorch layouts")
    m = trained_psn_lambda(m, run.variables)
    state = tio.to_torch(run.variables, fmt, model=m)
    tio.save_state_dict(state, out)
    arch = layouts.arch_from_snnjax({p: tuple(v.shape) for p, v in trees.flatten(run.variables["params"]).items()})
    sidecar = {
        "format": fmt,
        "workdir": os.path.abspath(workdir),
        "stage": run.stage,
        "step": run.step,
        "step_choice": str(chosen["choice"]),
        "steps_available": chosen["steps"],
        "best_step": chosen["best_step"],
        "best_test_accuracy": chosen["best_test_accuracy"],
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


def step_line(sidecar: dict[str, Any]) -> str:
    """Which checkpoint was exported, for the user: ``stage student, step 120 (--step last; steps
    available: [60, 120]; best test accuracy 0.9 at step 60)``."""
    best = (
        f"; best test accuracy {sidecar['best_test_accuracy']:.4f} at step {sidecar['best_step']}"
        if sidecar["best_step"] >= 0
        else ""
    )
    return (
        f"stage {sidecar['stage']}, step {sidecar['step']} (--step {sidecar['step_choice']}; "
        f"steps available: {sidecar['steps_available']}{best})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnjax.interop.export", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a finished (or checkpointed) run directory")
    parser.add_argument("--out", required=True, help="output file: .pth, .pt or .safetensors")
    parser.add_argument("--format", default="spikingjelly", choices=layouts.LAYOUTS, help="PyTorch layout")
    parser.add_argument("--stage", default=None, help="checkpoint stage (default: the run's result)")
    parser.add_argument(
        "--step",
        default=DEFAULT_STEP,
        help="which checkpoint: last (default; the newest), best (best test accuracy: chosen on the test "
        "split, so optimistic) or a step number",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out and its .json sidecar")
    args = parser.parse_args(argv)
    from snnjax.train.checkpoint import CheckpointError  # its message is one line with the fix

    try:
        sidecar = export_run(args.workdir, args.out, args.format, args.stage, args.step, args.force)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    neuron = sidecar["neuron"]
    what = "ANN" if neuron is None else f"SNN (T={neuron['time_steps']}, {neuron['node']})"
    print(f"wrote {args.out} ({sidecar['tensors']} tensors, {args.format} layout, {what}) and {args.out}.json")
    print(f"exported {step_line(sidecar)}")
    if neuron and "warning" in neuron:
        print(f"warning: {neuron['warning']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
