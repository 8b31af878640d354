"""snnjax.train.stages: stage-checkpoint lookup, restore from the plan's abstract state, skip a finished stage."""

import os

import jax
import numpy as np
import pytest

from snnjax import data, models, workdir_layout
from snnjax.train import mesh as mesh_lib
from snnjax.train import stages


def test_find_checkpoint_dir_accepts_a_workdir_or_the_directory_itself(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "train" / "120").mkdir(parents=True)
    (run / "checkpoints" / "teacher").mkdir()  # present but empty: skipped
    kwargs = dict(key="config.teacher.checkpoint", what="teacher", fix="train one")
    found = stages.find_checkpoint_dir(str(run), ("teacher", "train"), **kwargs)
    assert found == str(run / "checkpoints" / "train")
    assert stages.find_checkpoint_dir(found, ("teacher",), **kwargs) == found
    with pytest.raises(
        FileNotFoundError, match=r"config.teacher.checkpoint='.*empty' holds no teacher .*Fix: train one"
    ):
        (tmp_path / "empty").mkdir()
        stages.find_checkpoint_dir(str(tmp_path / "empty"), ("teacher",), **kwargs)


def _leaves_equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_a_finished_stage_is_restored_not_retrained_and_restores_from_another_workdir(tiny_baseline, tmp_path):
    config, mesh = tiny_baseline, mesh_lib.make_mesh()
    splits = data.load_from_config(config.data)
    model = models.build(config.model, splits.num_classes)
    workdir = str(tmp_path / "run")
    os.makedirs(workdir)
    first = stages.run_stage(config, workdir, "teacher", model=model, splits=splits, mesh=mesh)
    assert first.summary["steps"] == 11 and os.path.exists(workdir_layout.stage_summary(workdir, "teacher"))
    logged = open(os.path.join(workdir, "metrics.jsonl")).read()

    again = stages.run_stage(config, workdir, "teacher", model=model, splits=splits, mesh=mesh)
    assert open(os.path.join(workdir, "metrics.jsonl")).read() == logged  # nothing trained or logged
    assert again.summary == first.summary and _leaves_equal(again.variables, first.variables)

    restore = stages.Restore(workdir, "config.teacher.checkpoint", ("teacher",), "teacher", "train one")
    other = str(tmp_path / "other")
    os.makedirs(other)
    restored = stages.run_stage(config, other, "teacher", model=model, splits=splits, restore=restore, mesh=mesh)
    assert restored.summary["restored_from"] == workdir and restored.summary["epoch"] == 1
    assert _leaves_equal(restored.variables, first.variables)
    assert _leaves_equal(restored.opt_state, first.opt_state)  # the optimizer state too (momentum)

    state, meta = stages.restore_stage(
        config, os.path.join(workdir, "checkpoints", "teacher"), model=model, splits=splits, mesh=mesh
    )
    assert int(state.step) == 11 and meta["best_step"] == 11
    nowhere = str(tmp_path / "nowhere")
    assert stages.restore_stage(config, nowhere, model=model, splits=splits, mesh=mesh) is None
