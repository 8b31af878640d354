"""Analyse a finished run directory: restore its model, run a test batch, write tables and PNGs.

A run's ``workdir/checkpoints/<stage>/<step>/`` holds the train state and the config it was
trained with (the ``config`` JSON item, :mod:`snnjax.train.checkpoint`), so the model is rebuilt
from the checkpoint alone; no config file or command line has to be repeated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from snnjax import data as data_lib
from snnjax import models, workdir_layout
from snnjax.analysis import plots
from snnjax.analysis import report as report_lib
from snnjax.analysis.energy import EnergyModel
from snnjax.analysis.spikes import SpikeReport, collect_stats, energy_totals, spike_summary
from snnjax.data import batches as data_batches

# Stages whose model is a run's result, most wanted first: idsnn student, teacher.py/baseline.py train,
# pretrain finetune, hybrid stdb, snn2ann snn2ann/bptt (then the earlier stages: teacher, ann, pretrain).
STAGE_PREFERENCE = ("student", "train", "finetune", "stdb", "snn2ann", "bptt")


@dataclasses.dataclass
class RestoredStage:
    """A restored stage of a run."""

    config: ml_collections.ConfigDict
    stage: str
    step: int
    model: Any
    variables: dict[str, Any]
    splits: Any


def checkpoint_stages(workdir: str) -> list[str]:
    """Stage names under ``workdir/checkpoints`` that hold at least one checkpoint step."""
    root = workdir_layout.checkpoints(workdir)
    if not os.path.isdir(root):
        return []
    return sorted(
        s
        for s in os.listdir(root)
        if os.path.isdir(os.path.join(root, s)) and any(d.isdigit() for d in os.listdir(os.path.join(root, s)))
    )


def choose_stage(workdir: str, stage: str | None = None) -> str:
    """``stage`` if it has checkpoints, else the preferred stage found (see ``STAGE_PREFERENCE``)."""
    stages = checkpoint_stages(workdir)
    if not stages:
        raise FileNotFoundError(
            f"no checkpoints under {workdir_layout.checkpoints(workdir)}. Fix: pass the --workdir of a "
            "run started with `python launch.py --config ... --workdir DIR`."
        )
    if stage is not None:
        if stage not in stages:
            raise ValueError(f"--stage={stage!r} has no checkpoints in {workdir}; stages found: {stages}")
        return stage
    for preferred in STAGE_PREFERENCE:
        if preferred in stages:
            return preferred
    return stages[-1]


def load_run(workdir: str, stage: str | None = None, *, mesh: Any) -> RestoredStage:
    """Rebuild the model of ``stage`` from its latest checkpoint's config and restore its variables,
    replicated over ``mesh`` (the analysing program's, built once at its entry: :func:`analyze_workdir`)."""
    from snnjax import methods  # noqa: F401  (registers the methods' model families: models.build below)
    from snnjax.train import checkpoint as ckpt_lib
    from snnjax.train import stages

    stage = choose_stage(workdir, stage)
    ckpt_dir = workdir_layout.stage_checkpoints(workdir, stage)
    ckpt = ckpt_lib.Checkpointer(ckpt_dir, async_save=False)
    try:
        step = ckpt.latest_step()
        config_dict = ckpt.read_config(step) if step is not None else None
    finally:
        ckpt.close()
    if config_dict is None:
        raise FileNotFoundError(
            f"the checkpoint {ckpt_dir}/{step} has no readable 'config' item. Fix: analyse a run "
            "written by snnjax.train.loop (it saves the config with every checkpoint)."
        )
    config_dict = {**config_dict, "model": models.upgrade_legacy(config_dict["model"])}
    config = ml_collections.ConfigDict(config_dict)
    splits = data_lib.load_from_config(config.data)  # the normalisation the run trained with
    model = models.build(config.model, splits.num_classes)
    restored = stages.restore_stage(config, ckpt_dir, model=model, splits=splits, mesh=mesh)
    if restored is None:
        raise FileNotFoundError(f"no checkpoint could be restored from {ckpt_dir}")
    state, _ = restored
    return RestoredStage(config, stage, int(state.step), model, state.variables, splits)


def test_inputs(splits, num_examples: int = 256) -> jnp.ndarray:
    """The first ``num_examples`` test images, normalised as in evaluation: float32 ``[N, H, W, C]``."""
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    images = np.asarray(splits.test.images[:num_examples])
    return data_batches.normalize(jnp.asarray(images), splits.mean, splits.std)


def stage_spike_summary(result, splits, num_examples: int = 256) -> dict[str, Any]:
    """Firing rates, synaptic operations and the energy estimate of a trained stage (one forward pass
    over its first ``num_examples`` test images): the ``spikes`` entry of a pipeline's ``summary.json``.

    ``result``: a trained stage, ``snnjax.train.loop.StageResult`` (its ``model`` and ``state``).
    """
    # Host copies: in a multi-process run this forward pass runs on each process's own devices.
    return spike_summary(result.model, jax.device_get(result.state.variables), test_inputs(splits, num_examples))


def write_figures(report: SpikeReport, out_dir: str, metrics_path: str | None = None) -> list[str]:
    """``firing_rates.png``, ``operations.png``, ``spike_raster.png`` and ``curves.png`` into ``out_dir``."""
    from snnjax.train import metric_writer

    os.makedirs(out_dir, exist_ok=True)
    written = [plots.plot_operations(report, os.path.join(out_dir, "operations.png"))]
    if report.neurons:
        written.append(plots.plot_firing_rates(report, os.path.join(out_dir, "firing_rates.png")))
        written.append(plots.plot_raster(report, os.path.join(out_dir, "spike_raster.png")))
    if metrics_path and os.path.exists(metrics_path):
        out = workdir_layout.curves(out_dir)
        summary_path = workdir_layout.summary(os.path.dirname(metrics_path))
        summary = None
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                summary = json.load(f)
        metric_writer.plot_curves(
            metric_writer.read_metrics(metrics_path),
            out,
            kd_stages=metric_writer.kd_stages(summary),
            tet_stages=metric_writer.tet_stages(summary),
        )
        written.append(out)
    return written


def report_dict(report: SpikeReport, energy_model: EnergyModel) -> dict[str, Any]:
    """Everything in the tables, JSON-ready."""
    return {
        **energy_totals(report, energy_model),
        "neurons": report.layer_stats(),
        "synapses": {
            s.path: {
                "kind": s.kind,
                "input": s.input_kind,
                "sops_per_example": s.sops_per_example,
                "snn_macs_per_example": s.executed_macs,
                "ann_macs_per_example": s.macs,
            }
            for s in report.synapses
        },
    }


def analyze_workdir(
    workdir: str,
    *,
    stage: str | None = None,
    num_examples: int = 256,
    batch_size: int = 256,
    energy_model: EnergyModel = EnergyModel(),
    out_dir: str | None = None,
    stream=None,
) -> dict[str, Any]:
    """Restore, measure, print the tables, write ``analysis.json`` and the PNGs; returns the JSON dict.

    ``stream`` defaults to the ``sys.stdout`` of the call (not of the import: redirections work).
    """
    from snnjax.train import mesh as mesh_lib

    stream = stream if stream is not None else sys.stdout
    # The entry point of an analysis: placement decided here, once (this process's devices).
    run = load_run(workdir, stage, mesh=mesh_lib.make_mesh())
    inputs = test_inputs(run.splits, num_examples)
    report = collect_stats(run.model, run.variables, inputs, batch_size=batch_size)
    out_dir = out_dir or workdir
    print(
        f"{workdir}: stage {run.stage!r} at step {run.step}, {run.config.model.name} "
        f"{run.config.model.neuron} T={run.config.model.time_steps}, {report.num_examples} test examples of "
        f"{run.splits.name}\n",
        file=stream,
    )
    print(report_lib.format_report(report, energy_model), file=stream)
    result = {
        "workdir": os.path.abspath(workdir),
        "stage": run.stage,
        "step": run.step,
        **report_dict(report, energy_model),
    }
    figures = write_figures(report, out_dir, workdir_layout.metrics(workdir))
    result["figures"] = figures
    os.makedirs(out_dir, exist_ok=True)
    with open(workdir_layout.analysis(out_dir), "w") as f:
        json.dump(result, f, indent=2)
    print(
        f"\nwrote {workdir_layout.analysis(out_dir)} and {', '.join(os.path.basename(p) for p in figures)}",
        file=stream,
    )
    return result
