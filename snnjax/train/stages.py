"""The stage runner every multi-stage pipeline uses: restore a finished stage, resume an interrupted
one, or train it; and the single-stage config of a sub-stage.

A stage (IDSNN's teacher, hybrid's ANN, pretraining's ANN, ...) is one :func:`loop.train_and_evaluate`
run whose checkpoints live in ``workdir/checkpoints/<stage>`` and whose summary is written to
``workdir/<stage>_summary.json`` when it finishes. :func:`run_stage`:

1. restores it from a user-given ``restore.checkpoint`` (another run's workdir or a checkpoint
   directory) when one is set, failing with the config key and a fix when nothing restores;
2. otherwise returns the stage of this workdir if it finished earlier (all steps done and its summary
   written), without compiling anything;
3. otherwise trains it (resuming from its latest checkpoint, if any) and writes its summary.

The stage-checkpoint lookup (:func:`find_checkpoint_dir`) and restore (:func:`restore_stage`, onto the
abstract state of the stage's :func:`snnjax.train.setup.plan`) live here, beside the runner; the
training loop only resumes its own stage.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import ml_collections
from jax.sharding import Mesh

from snnjax import data as data_lib
from snnjax import workdir_layout
from snnjax.train import checkpoint as ckpt_lib
from snnjax.train import loop, setup, steps
from snnjax.train.run_outputs import write_json
from snnjax.train.state import TrainState


@dataclasses.dataclass(frozen=True)
class Restore:
    """Where a stage may come from instead of being trained here.

    Attributes:
      checkpoint: the user's path (a run's workdir or a checkpoint directory); "" = train here.
      key: the config key that holds it, for error messages (``config.teacher.checkpoint``).
      stages: checkpoint stage names to look for under ``<checkpoint>/checkpoints/``, in order.
      what: what the stage is, for messages ("teacher").
      fix: what the user should do when nothing is found there.
    """

    checkpoint: str
    key: str
    stages: tuple[str, ...]
    what: str
    fix: str


@dataclasses.dataclass(frozen=True)
class StageOutput:
    """A stage's variables (on the devices), its summary (``restored_from`` when restored) and its
    optimizer state (e.g. to carry SGD momentum into a later stage)."""

    variables: Any
    summary: dict[str, Any]
    opt_state: Any = None


def _log(message: str) -> None:
    from snnjax.train import distributed

    distributed.say(message)


def find_checkpoint_dir(path: str, stages: tuple[str, ...], *, key: str, what: str, fix: str) -> str:
    """The checkpoint directory behind a user-given ``path``.

    ``path`` may be a run's workdir (then ``<path>/checkpoints/<stage>`` for the first of ``stages``
    that holds a step directory) or a checkpoint directory itself. ``key`` (the config key),
    ``what`` and ``fix`` word the error raised when none holds a checkpoint.
    """
    candidates = [workdir_layout.stage_checkpoints(path, stage) for stage in stages] + [path]
    for candidate in candidates:
        if os.path.isdir(candidate) and any(name.isdigit() for name in os.listdir(candidate)):
            return candidate
    raise FileNotFoundError(
        f"{key}={path!r} holds no {what} checkpoint (looked in {', '.join(candidates)}). Fix: {fix}"
    )


def restore_stage(
    config: ml_collections.ConfigDict,
    checkpoint_dir: str,
    *,
    model: nn.Module,
    splits: data_lib.DatasetSplits,
    mesh: Mesh,
    stage_plan: setup.Plan | None = None,
) -> tuple[TrainState, dict[str, Any]] | None:
    """The latest ``(state, meta)`` in ``checkpoint_dir`` for ``config``'s model/optimizer, or None.

    Nothing is compiled: the target structure is the stage plan's abstract state
    (:func:`snnjax.train.setup.plan`; pass ``stage_plan`` when the caller has it).
    """
    if not os.path.isdir(checkpoint_dir):
        return None
    if stage_plan is None:
        stage_plan = setup.plan(config, splits, model, mesh)
    ckpt = ckpt_lib.Checkpointer(checkpoint_dir, keep=int(config.train.keep_checkpoints), async_save=False)
    try:
        # Read-only (it may be another run's directory): the newest that restores, nothing moved aside.
        newest = ckpt.restore_newest(stage_plan.abstract_state, move_aside=False)
        return None if newest is None else newest[1:]
    finally:
        ckpt.close()


def sub_stage_config(
    config: ml_collections.ConfigDict,
    *,
    model: ml_collections.ConfigDict | None = None,
    data: ml_collections.ConfigDict | None = None,
    optim: ml_collections.ConfigDict | None = None,
    train: ml_collections.ConfigDict | None = None,
    drop: tuple[str, ...] = (),
) -> ml_collections.ConfigDict:
    """The single-stage config of a sub-stage: ``config`` with the given sections replaced (copies),
    knowledge distillation off, and the method sections in ``drop`` removed."""
    cfg = ml_collections.ConfigDict(config.to_dict())
    for name, section in (("model", model), ("data", data), ("optim", optim), ("train", train)):
        if section is not None:
            cfg[name] = ml_collections.ConfigDict(section.to_dict())
    cfg.kd.enabled = False
    for name in drop:
        if name in cfg:
            del cfg[name]
    return cfg


def stored_config(restore: Restore) -> ml_collections.ConfigDict:
    """The run config saved with the latest checkpoint behind ``restore.checkpoint``.

    For restoring a run whose model differs from anything in the current config (e.g. a transplant
    source of another depth): its model and optimiser are rebuilt from what it was trained with.
    """
    from snnjax import models
    from snnjax.train import checkpoint as ckpt_lib

    source = find_checkpoint_dir(
        restore.checkpoint, restore.stages, key=restore.key, what=restore.what, fix=restore.fix
    )
    reader = ckpt_lib.Checkpointer(source, keep=1, async_save=False)
    try:
        latest = reader.latest_step()
        stored = reader.read_config(latest) if latest is not None else None
    finally:
        reader.close()
    if not stored or "model" not in stored:
        raise ValueError(
            f"{restore.key}={restore.checkpoint!r}: the checkpoint in {source} carries no readable run "
            f"config, so its model cannot be rebuilt. Fix: {restore.fix}"
        )
    stored["model"] = models.upgrade_legacy(stored["model"])
    return ml_collections.ConfigDict(stored)


def run_stage(
    config: ml_collections.ConfigDict,
    workdir: str,
    stage: str,
    *,
    model: nn.Module,
    splits: data_lib.DatasetSplits,
    restore: Restore | None = None,
    make_step: Callable = steps.make_train_step,
    extra_summary: dict[str, Any] | None = None,
    mesh: Mesh,
) -> StageOutput:
    """Restore, resume or train stage ``stage`` of ``config`` (a single-stage config); see the module doc.

    ``extra_summary`` is added to the summary of a stage trained here (and saved with it). ``mesh``: the
    run's mesh, built once by the caller (``launch.py``).
    """
    if restore is not None and restore.checkpoint:
        source = find_checkpoint_dir(
            restore.checkpoint, restore.stages, key=restore.key, what=restore.what, fix=restore.fix
        )
        restored = restore_stage(config, source, model=model, splits=splits, mesh=mesh)
        if restored is None:
            raise FileNotFoundError(
                f"{restore.key}={restore.checkpoint!r}: no {restore.what} checkpoint could be "
                f"restored from {source}. Fix: {restore.fix}"
            )
        state, meta = restored
        _log(f"[{stage}] restored from {restore.checkpoint} (step {int(state.step)})")
        return StageOutput(state.variables, {"restored_from": restore.checkpoint, **meta}, state.opt_state)
    path, ckpt_dir = workdir_layout.stage_summary(workdir, stage), workdir_layout.stage_checkpoints(workdir, stage)
    if os.path.exists(path) and os.path.isdir(ckpt_dir):  # finished earlier, if all its steps are done
        stage_plan = setup.plan(config, splits, model, mesh)
        restored = restore_stage(config, ckpt_dir, model=model, splits=splits, mesh=mesh, stage_plan=stage_plan)
        if restored is not None and loop.stage_complete(int(restored[0].step), stage_plan.total_steps, restored[1]):
            _log(f"[{stage}] finished earlier; restored from {ckpt_dir}")
            with open(path) as f:
                return StageOutput(restored[0].variables, json.load(f), restored[0].opt_state)
    result = loop.train_and_evaluate(
        config, workdir, stage=stage, model=model, splits=splits, make_step=make_step, mesh=mesh
    )
    summary = {**result.summary, **(extra_summary or {})}
    write_json(path, summary)
    return StageOutput(result.state.variables, summary, result.state.opt_state)
