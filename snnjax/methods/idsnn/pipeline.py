"""IDSNN (Fan et al., Biomimetics 2023): initialisation from a larger ANN + distillation.

Stages, each checkpointed so that a re-run skips what is finished:

1. teacher: train the ANN teacher (ResNet34) or restore it from ``config.teacher.checkpoint``;
2. transplant: map the teacher's weights (or, with ``config.transplant.checkpoint``, another finished
   ANN run's, as the official code's separate pycls checkpoint) into the Spiking ResNet18 (block-index
   mapping and channel loop-interpolation, :mod:`snnjax.methods.idsnn.transplant`), report written to
   ``transplant_report.txt``;
3. student: train the SNN with surrogate gradients and Hinton KD from the frozen teacher.

``config.transplant.enabled`` and ``config.kd.enabled`` are the paper's two ablation switches
(baseline = both off, init-only, KD-only, IDSNN = both on).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import jax
import ml_collections

from snnjax import models
from snnjax.methods.idsnn import config as idsnn_config
from snnjax.methods.idsnn import transplant
from snnjax.train import loop, stages
from snnjax.train.summary import finish_run, spike_summary


def obtain_transplant_source(config: ml_collections.ConfigDict, splits) -> tuple[Any, dict[str, Any]]:
    """The variables to transplant from when ``config.transplant.checkpoint`` names a run of its own.

    The official code initialises from one ANN checkpoint (a pycls ResNet34) and distils from another;
    this restores any finished ANN run (teacher.py, or an IDSNN workdir's teacher stage) with the model
    and optimiser config stored in its own checkpoint, so its depth or width may differ from the KD
    teacher's (e.g. a same-depth ResNet18 ANN).
    """
    from snnjax.train import checkpoint as ckpt_lib

    path = config.transplant.checkpoint
    source = loop.find_checkpoint_dir(
        path,
        ("teacher", "train"),
        key="config.transplant.checkpoint",
        what="ANN",
        fix="pass the --workdir of a finished `launch.py --config configs/teacher.py` run (any ResNet depth), "
        "or leave it empty to transplant from the KD teacher.",
    )
    reader = ckpt_lib.Checkpointer(source, keep=1, async_save=False)
    try:
        latest = reader.latest_step()
        stored = reader.read_config(latest) if latest is not None else None
    finally:
        reader.close()
    if not stored or "model" not in stored:
        raise ValueError(
            f"config.transplant.checkpoint={path!r}: the checkpoint in {source} carries no readable "
            "run config, so its model cannot be rebuilt. Fix: point it at a workdir written by this "
            "version of snnjax (launch.py --config configs/teacher.py ...)."
        )
    scfg = ml_collections.ConfigDict(stored)
    if scfg.model.neuron != "relu":
        raise ValueError(
            f"config.transplant.checkpoint={path!r} holds a {scfg.model.name} with neuron="
            f"{scfg.model.neuron!r}; the transplant source must be an ANN (neuron='relu')."
        )
    model = models.build(scfg.model, splits.num_classes)
    state, meta = loop.restore_stage(scfg, source, model=model, splits=splits)
    print(
        f"[transplant] source {scfg.model.name} width {scfg.model.width} restored from {source} "
        f"(step {int(state.step)})",
        file=sys.stderr,
    )
    return state.variables, {
        "checkpoint": path,
        "model": scfg.model.name,
        "width": int(scfg.model.width),
        "step": int(state.step),
    }


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    splits = loop.load_data(config.data)
    student = models.build(config.model, splits.num_classes)
    teacher_model = teacher = None
    separate_source = bool(config.transplant.enabled) and bool(config.transplant.get("checkpoint", ""))
    if (config.transplant.enabled and not separate_source) or config.kd.enabled:
        tcfg = idsnn_config.teacher_config(config)
        teacher_model = models.build(tcfg.model, splits.num_classes)
        teacher = stages.run_stage(
            tcfg, workdir, "teacher", model=teacher_model, splits=splits, restore=idsnn_config.teacher_restore(config)
        )

    initial, report_counts = None, {}
    if config.transplant.enabled:
        if separate_source:
            source_vars, source_info = obtain_transplant_source(config, splits)
        else:
            source_vars, source_info = teacher.variables, {"checkpoint": "", "model": config.teacher.model.name}
        fresh = loop.init_variables(student, splits.image_shape, int(config.seed), loop.mesh_lib.make_mesh())
        initial, report = transplant.transplant(
            jax.device_get(source_vars),
            jax.device_get(fresh),
            block_rule=config.transplant.block_rule,
            include_stem=bool(config.transplant.include_stem),
            include_shortcut=bool(config.transplant.include_shortcut),
            include_head=bool(config.transplant.include_head),
        )
        with open(os.path.join(workdir, "transplant_report.txt"), "w") as f:
            f.write(report.to_text() + "\n")
        report_counts = {"transplanted": report.transplanted, "kept": report.kept, "source": source_info}
        print(
            f"[transplant] {report.transplanted} tensors from the teacher, {report.kept} kept; "
            f"see {workdir}/transplant_report.txt",
            file=sys.stderr,
        )

    kd_teacher = loop.Teacher(teacher_model, teacher.variables) if config.kd.enabled else None
    result = loop.train_and_evaluate(
        config, workdir, stage="student", model=student, splits=splits, initial_variables=initial, teacher=kd_teacher
    )
    summary = dict(result.summary)
    summary.update(
        pipeline="idsnn",
        init=bool(config.transplant.enabled),
        kd=bool(config.kd.enabled),
        teacher=teacher.summary if teacher else {},
        transplant=report_counts,
        spikes=spike_summary(result, splits),
    )
    return finish_run(workdir, summary)
