"""The guarantees of docs/guarantees.md that the launch tests do not already prove.

Runs use a tiny ANN (width 4, T = 1) on digits so that each launch takes seconds.
"""

import json
import os
import shutil

import pytest
from launch_helpers import TINY, launch

from snnjax.train import preflight

FAST = [*TINY, "--config.model.name=resnet18", "--config.train.epochs=1"]


def _epoch_records(workdir):
    return [
        json.loads(line)
        for line in (workdir / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "epoch"
    ]


TIMINGS = ("images_per_s", "epoch_train_seconds")  # wall-clock measurements, not results


def test_same_seed_same_metrics_and_other_seed_differs(tmp_path):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        launch("configs/teacher.py:digits", tmp_path / name, *FAST, f"--config.seed={seed}")
        runs[name] = [{k: v for k, v in r.items() if k not in TIMINGS} for r in _epoch_records(tmp_path / name)]
    assert runs["a"] == runs["b"]
    assert runs["a"][0]["train_loss"] != runs["c"][0]["train_loss"]


def test_half_written_checkpoint_is_ignored_on_restart(tmp_path):
    wd = tmp_path / "run"
    launch("configs/teacher.py:digits", wd, *FAST, "--config.train.checkpoint_every_steps=5")
    ckdir = wd / "checkpoints" / "train"
    complete = sorted(int(s) for s in os.listdir(ckdir) if s.isdigit())
    # What a crash in the middle of an orbax save leaves behind: a temporary directory that was
    # never renamed to its step number, with partial content.
    torn = ckdir / "999.orbax-checkpoint-tmp-1700000000"
    shutil.copytree(ckdir / str(complete[-1]), torn)
    for root, _, files in os.walk(torn):
        for name in files:
            open(os.path.join(root, name), "wb").close()
    out = launch("configs/teacher.py:digits", wd, *FAST, "--config.train.epochs=2")
    assert f"resumed from {ckdir / str(complete[-1])}" in out.stderr
    steps = sorted(int(s) for s in os.listdir(ckdir) if s.isdigit())
    assert steps[-1] == 44 and 999 not in steps


def test_resuming_with_another_model_is_refused_and_nothing_is_overwritten(tmp_path):
    wd = tmp_path / "run"
    launch("configs/teacher.py:digits", wd, *FAST)
    before = {p: p.stat().st_mtime_ns for p in (wd / "checkpoints").rglob("*") if p.is_file()}
    proc = launch("configs/teacher.py:digits", wd, *FAST, "--config.model.width=8", check=False)
    assert proc.returncode != 0
    assert "model.width: checkpoint 4 vs now 8" in proc.stderr and str(wd / "checkpoints" / "train") in proc.stderr
    after = {p: p.stat().st_mtime_ns for p in (wd / "checkpoints").rglob("*") if p.is_file()}
    assert before == after


def test_teacher_checkpoint_of_the_wrong_shape_is_named(tmp_path):
    teacher = tmp_path / "teacher"
    launch("configs/teacher.py:digits", teacher, *FAST)  # a ResNet18 teacher of width 4
    proc = launch(
        "configs/idsnn.py:digits",
        tmp_path / "student",
        *TINY,
        "--config.teacher.model.width=4",
        f"--config.teacher.checkpoint={teacher}",
        "--config.train.epochs=1",
        check=False,
    )
    assert proc.returncode != 0
    assert "does not fit the current model" in proc.stderr or "different model" in proc.stderr
    assert str(teacher / "checkpoints" / "train") in proc.stderr


def test_nonfinite_loss_stops_with_step_and_hint_or_is_skipped(tmp_path):
    proc = launch("configs/teacher.py:digits", tmp_path / "stop", *FAST, "--config.optim.lr=1e30", check=False)
    assert proc.returncode != 0
    assert "non-finite loss or gradient at step" in proc.stderr and "config.train.nonfinite=skip" in proc.stderr
    launch(
        "configs/teacher.py:digits", tmp_path / "skip", *FAST, "--config.optim.lr=1e30", "--config.train.nonfinite=skip"
    )
    records = [json.loads(line) for line in (tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()]
    assert sum(r.get("skipped_steps", 0) for r in records if r["kind"] == "train") > 0


def test_workdir_preflight(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(preflight.WorkdirError, match="not writable"):
        preflight.check_workdir(str(blocker / "run"), min_free_mb=1)
    with pytest.raises(preflight.WorkdirError, match="min_free_disk_mb"):
        preflight.check_workdir(str(tmp_path / "run"), min_free_mb=1e12)
    proc = launch(
        "configs/teacher.py:digits",
        tmp_path / "big",
        *FAST,
        "--config.train.min_free_disk_mb=1000000000000",
        check=False,
    )
    assert proc.returncode != 0 and "MiB free" in proc.stderr


def test_resume_mismatch_ignores_training_length_but_not_model():
    saved = {
        "model": {"width": 4, "name": "resnet18"},
        "data": {"name": "digits", "data_dir": "/a"},
        "train": {"epochs": 1},
    }
    now = {
        "model": {"width": 4, "name": "resnet18", "unroll": 0, "conv_grad": "split"},
        "data": {"name": "digits", "data_dir": "/b"},
        "train": {"epochs": 5},
    }
    assert preflight.resume_mismatches(saved, now) == []  # speed switches may change on resume
    now["model"]["width"] = 8
    assert preflight.resume_mismatches(saved, now) == ["model.width: checkpoint 4 vs now 8"]
