"""The named steps of ``train.loop.train_and_evaluate``, one at a time (8 fake CPU devices, tiny ResNet18)."""

import json
import os

import ml_collections
import pytest

from snnjax.train import distributed, loop
from snnjax.train import mesh as mesh_lib
from snnjax.train.metric_writer import MetricWriter, NullWriter


def test_each_step_of_a_stage_and_a_resume(tiny_baseline, tmp_path, monkeypatch):
    config, workdir = tiny_baseline, str(tmp_path)
    run = loop.set_up(config, workdir, mesh=mesh_lib.make_mesh())
    assert (run.step, run.steps_per_epoch, run.total_steps, int(run.state.step)) == (0, 11, 11, 0)
    assert loop.resume(run) is None and run.start_step == 0  # nothing to resume
    loop.start(run)
    assert isinstance(run.writer, MetricWriter) and run.inputs is not None and run.evaluator.num_batches >= 1
    loop.train_epoch(run)  # to the end of epoch 1
    assert run.step == 11 and int(run.state.step) == 11 and not run.pending and len(run.epoch_records) == 11
    record = loop.end_epoch(run)
    assert record["epoch"] == 1 and 0.0 <= record["test_accuracy"] <= 1.0 and run.epoch_records == []
    assert run.meta["best_step"] == 11 and run.last_saved == 11
    assert loop.evaluate(run, run.state.variables) == {k: record[k] for k in ("test_accuracy", "test_loss")}
    loop.close(run)
    summary = loop.finish(run).summary
    assert summary["steps"] == 11 and summary["processes"] == 1 and summary["devices"] == 8

    # The finished stage again, as process 1 of a multi-process run would see it: it resumes from
    # the checkpoint, trains nothing, writes no log line, and reports the same accuracy.
    logged = open(os.path.join(workdir, "metrics.jsonl")).read()
    monkeypatch.setattr(distributed, "is_primary", lambda: False)
    again = loop.set_up(config, workdir, mesh=mesh_lib.make_mesh())
    assert loop.resume(again) == 11 and again.step == again.start_step == 11
    loop.start(again)
    assert isinstance(again.writer, NullWriter)
    loop.close(again)
    assert loop.finish(again).summary["final_test_accuracy"] == pytest.approx(summary["final_test_accuracy"])
    assert open(os.path.join(workdir, "metrics.jsonl")).read() == logged
    assert [json.loads(line)["kind"] for line in logged.splitlines()][-1] == "epoch"


def test_a_stage_stops_at_its_target_accuracy_and_stays_complete(tiny_baseline, tmp_path):
    """``train.stop_at_accuracy``: the stage ends after the first epoch whose test accuracy reaches the
    target (the schedule of all ``train.epochs`` unchanged), and a re-run finds it complete."""
    config, workdir = tiny_baseline, str(tmp_path)
    config.train.epochs, config.train.stop_at_accuracy = 3, 0.01  # any network scores >= 1 % on 10 classes
    first = loop.train_and_evaluate(config, workdir, mesh=mesh_lib.make_mesh()).summary
    assert first["steps"] == 11 and first["epochs"] == 3  # 1 epoch of 3 (11 steps each)
    assert first["stop_at_accuracy"] == {"target": 0.01, "reached_epoch": 1}
    logged = open(os.path.join(workdir, "metrics.jsonl")).read()
    again = loop.train_and_evaluate(config, workdir, mesh=mesh_lib.make_mesh()).summary
    assert again["steps"] == 11 and again["resumed_from_step"] == 11
    assert open(os.path.join(workdir, "metrics.jsonl")).read() == logged  # nothing trained, nothing logged


def test_stage_complete_by_steps_or_by_an_early_stop():
    assert loop.stage_complete(33, 33, {}) and not loop.stage_complete(11, 33, {})
    assert loop.stage_complete(11, 33, {"stopped_epoch": 1, "stopped_because": "plateau"})
    assert not loop.stage_complete(11, 33, {"stopped_epoch": -1})


def test_early_stop_reasons_by_hand():
    train = ml_collections.ConfigDict(
        {"stop_at_accuracy": 0.9, "stop_on_plateau_epochs": 2, "stop_on_plateau_gain": 0.003}
    )
    assert loop.early_stop_reason(train, [0.80, 0.85]) is None  # fewer than 2 + 1 evaluations
    assert loop.early_stop_reason(train, [0.80, 0.85, 0.86]) is None  # +6 points over the last 2
    assert loop.early_stop_reason(train, [0.865, 0.866, 0.8675]) == "plateau"  # +0.25 points < 0.3
    assert loop.early_stop_reason(train, [0.86, 0.87, 0.864, 0.8668]) == "plateau"  # 86.68 - 87.00 < 0.3
    assert loop.early_stop_reason(train, [0.5, 0.9]) == "accuracy"  # the target first
    off = ml_collections.ConfigDict(
        {"stop_at_accuracy": 0.0, "stop_on_plateau_epochs": 0, "stop_on_plateau_gain": 0.003}
    )
    assert loop.early_stop_reason(off, [0.9, 0.9, 0.9]) is None
