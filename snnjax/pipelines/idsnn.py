"""IDSNN (Fan et al., Biomimetics 2023): initialisation from a larger ANN + distillation.

Stages, each checkpointed so that a re-run skips what is finished:

1. teacher: train the ANN teacher (ResNet34) or restore it from ``config.teacher.checkpoint``;
2. transplant: map the teacher's weights (or, with ``config.transplant.checkpoint``, another finished
   ANN run's, as the official code's separate pycls checkpoint) into the Spiking ResNet18 (block-index
   mapping and channel loop-interpolation, :mod:`snnjax.transplant`), report written to
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

from snnjax import models, transplant
from snnjax.pipelines.common import finish_run, spike_summary, write_json
from snnjax.train import loop


def teacher_run_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The single-stage config that trains the teacher: the run's data, the teacher's model/optim/train."""
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.model = config.teacher.model
    cfg.optim = config.teacher.optim
    cfg.train = config.teacher.train
    cfg.kd.enabled = False
    del cfg["teacher"], cfg["transplant"]
    return cfg


def obtain_teacher(config: ml_collections.ConfigDict, workdir: str, splits) -> tuple[Any, Any, dict[str, Any]]:
    """Stage 1: ``(teacher_model, teacher_variables, teacher_summary)``."""
    tcfg = teacher_run_config(config)
    model = models.build_model(tcfg.model, splits.num_classes)
    if config.teacher.checkpoint:
        source = loop.find_checkpoint_dir(
            config.teacher.checkpoint, ("teacher", "train"), key="config.teacher.checkpoint", what="teacher",
            fix="pass the --workdir of a finished `launch.py --config configs/teacher.py` run, or leave it empty "
                "to train the teacher here.")
        restored = loop.restore_stage(tcfg, source, model=model, splits=splits)
        state, meta = restored
        print(f"[teacher] restored from {config.teacher.checkpoint} (step {int(state.step)})", file=sys.stderr)
        return model, state.variables, {"restored_from": config.teacher.checkpoint, **meta}
    ckpt_dir = loop.stage_checkpoint_dir(workdir, "teacher")
    restored = loop.restore_stage(tcfg, ckpt_dir, model=model, splits=splits)
    summary_path = os.path.join(workdir, "teacher_summary.json")
    if restored is not None and int(restored[0].step) >= loop.total_steps(tcfg, splits) and os.path.exists(summary_path):
        print(f"[teacher] finished earlier; restored from {ckpt_dir}", file=sys.stderr)
        import json

        with open(summary_path) as f:
            return model, restored[0].variables, json.load(f)
    result = loop.train_and_evaluate(tcfg, workdir, stage="teacher", model=model, splits=splits)
    write_json(summary_path, result.summary)
    return model, result.state.variables, result.summary


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
        path, ("teacher", "train"), key="config.transplant.checkpoint", what="ANN",
        fix="pass the --workdir of a finished `launch.py --config configs/teacher.py` run (any ResNet depth), "
            "or leave it empty to transplant from the KD teacher.")
    reader = ckpt_lib.Checkpointer(source, keep=1, async_save=False)
    try:
        latest = reader.latest_step()
        stored = reader.read_config(latest) if latest is not None else None
    finally:
        reader.close()
    if not stored or "model" not in stored:
        raise ValueError(f"config.transplant.checkpoint={path!r}: the checkpoint in {source} carries no readable "
                         "run config, so its model cannot be rebuilt. Fix: point it at a workdir written by this "
                         "version of snnjax (launch.py --config configs/teacher.py ...).")
    scfg = ml_collections.ConfigDict(stored)
    if scfg.model.neuron != "relu":
        raise ValueError(f"config.transplant.checkpoint={path!r} holds a {scfg.model.name} with neuron="
                         f"{scfg.model.neuron!r}; the transplant source must be an ANN (neuron='relu').")
    model = models.build_model(scfg.model, splits.num_classes)
    state, meta = loop.restore_stage(scfg, source, model=model, splits=splits)
    print(f"[transplant] source {scfg.model.name} width {scfg.model.width} restored from {source} "
          f"(step {int(state.step)})", file=sys.stderr)
    return state.variables, {"checkpoint": path, "model": scfg.model.name, "width": int(scfg.model.width),
                             "step": int(state.step)}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    splits = loop.load_data(config.data)
    student = models.build_model(config.model, splits.num_classes)
    separate_source = bool(config.transplant.enabled) and bool(config.transplant.get("checkpoint", ""))
    need_teacher = (bool(config.transplant.enabled) and not separate_source) or bool(config.kd.enabled)
    teacher_model = teacher_vars = None
    teacher_summary: dict[str, Any] = {}
    if need_teacher:
        teacher_model, teacher_vars, teacher_summary = obtain_teacher(config, workdir, splits)

    initial = None
    report_counts: dict[str, Any] = {}
    if config.transplant.enabled:
        source_vars, source_info = teacher_vars, {"checkpoint": "", "model": config.teacher.model.name}
        if separate_source:
            source_vars, source_info = obtain_transplant_source(config, splits)
        mesh = loop.mesh_lib.make_mesh()
        fresh = loop.init_variables(student, splits.image_shape, int(config.seed), mesh)
        initial, report = transplant.transplant(
            jax.device_get(source_vars), jax.device_get(fresh), block_rule=config.transplant.block_rule,
            include_stem=bool(config.transplant.include_stem),
            include_shortcut=bool(config.transplant.include_shortcut),
            include_head=bool(config.transplant.include_head))
        with open(os.path.join(workdir, "transplant_report.txt"), "w") as f:
            f.write(report.to_text() + "\n")
        report_counts = {"transplanted": report.transplanted, "kept": report.kept, "source": source_info}
        print(f"[transplant] {report.transplanted} tensors from the teacher, {report.kept} kept; "
              f"see {workdir}/transplant_report.txt", file=sys.stderr)

    teacher = loop.Teacher(teacher_model, teacher_vars) if config.kd.enabled else None
    result = loop.train_and_evaluate(config, workdir, stage="student", model=student, splits=splits,
                                     initial_variables=initial, teacher=teacher)
    summary = dict(result.summary)
    summary.update(pipeline="idsnn", init=bool(config.transplant.enabled), kd=bool(config.kd.enabled),
                   teacher=teacher_summary, transplant=report_counts, spikes=spike_summary(result, splits))
    return finish_run(workdir, summary)
