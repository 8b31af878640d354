"""IDSNN (Fan et al., Biomimetics 2023): initialisation from a larger ANN + distillation.

Stages, each checkpointed so that a re-run skips what is finished:

1. teacher: train the ANN teacher (ResNet34) or restore it from ``config.teacher.checkpoint``;
2. transplant: map the teacher's weights into the Spiking ResNet18 (block-index mapping and channel
   loop-interpolation, :mod:`snnjax.transplant`), report written to ``transplant_report.txt``;
3. student: train the SNN with surrogate gradients and Hinton KD from the frozen teacher.

``config.transplant.enabled`` and ``config.kd.enabled`` are the paper's two ablation switches
(baseline = both off, init-only, KD-only, IDSNN = both on).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections

from snnjax import models, transplant
from snnjax.pipelines.common import finish_run, spike_summary, write_json, write_text
from snnjax.train import distributed, loop


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
        distributed.say(f"[teacher] restored from {config.teacher.checkpoint} (step {int(state.step)})")
        return model, state.variables, {"restored_from": config.teacher.checkpoint, **meta}
    ckpt_dir = loop.stage_checkpoint_dir(workdir, "teacher")
    restored = loop.restore_stage(tcfg, ckpt_dir, model=model, splits=splits)
    summary_path = os.path.join(workdir, "teacher_summary.json")
    if restored is not None and int(restored[0].step) >= loop.total_steps(tcfg, splits) and os.path.exists(summary_path):
        distributed.say(f"[teacher] finished earlier; restored from {ckpt_dir}")
        import json

        with open(summary_path) as f:
            return model, restored[0].variables, json.load(f)
    result = loop.train_and_evaluate(tcfg, workdir, stage="teacher", model=model, splits=splits)
    write_json(summary_path, result.summary)
    return model, result.state.variables, result.summary


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    splits = loop.load_data(config.data)
    student = models.build_model(config.model, splits.num_classes)
    need_teacher = bool(config.transplant.enabled) or bool(config.kd.enabled)
    teacher_model = teacher_vars = None
    teacher_summary: dict[str, Any] = {}
    if need_teacher:
        teacher_model, teacher_vars, teacher_summary = obtain_teacher(config, workdir, splits)

    initial = None
    report_counts: dict[str, Any] = {}
    if config.transplant.enabled:
        mesh = loop.mesh_lib.make_mesh()
        fresh = loop.init_variables(student, splits.image_shape, int(config.seed), mesh)
        initial, report = transplant.transplant(
            jax.device_get(teacher_vars), jax.device_get(fresh), block_rule=config.transplant.block_rule,
            include_stem=bool(config.transplant.include_stem),
            include_shortcut=bool(config.transplant.include_shortcut),
            include_head=bool(config.transplant.include_head))
        write_text(os.path.join(workdir, "transplant_report.txt"), report.to_text() + "\n")
        report_counts = {"transplanted": report.transplanted, "kept": report.kept}
        distributed.say(f"[transplant] {report.transplanted} tensors from the teacher, {report.kept} kept; "
                        f"see {workdir}/transplant_report.txt")

    teacher = loop.Teacher(teacher_model, teacher_vars) if config.kd.enabled else None
    result = loop.train_and_evaluate(config, workdir, stage="student", model=student, splits=splits,
                                     initial_variables=initial, teacher=teacher)
    summary = dict(result.summary)
    summary.update(pipeline="idsnn", init=bool(config.transplant.enabled), kd=bool(config.kd.enabled),
                   teacher=teacher_summary, transplant=report_counts, spikes=spike_summary(result, splits))
    return finish_run(workdir, summary)
