"""``python -m snnjax.methods.idsnn.ablation`` end to end on the embedded digits (one tiny arm, one seed)."""

import json
import os
import subprocess
import sys

import pytest
from launch_helpers import ROOT, TINY, python_with_file_size_cap

from snnjax import workdir_layout
from snnjax.methods.idsnn import ablation as ablation_lib
from snnjax.train import workdir_lock
from snnjax.train.metric_writer import read_metrics


def ablation(root, *extra, check=True, python=(sys.executable,), arms="baseline", epochs=("--config.train.epochs=1",)):
    cmd = [
        *python,
        "-m",
        "snnjax.methods.idsnn.ablation",
        "--config=configs/idsnn.py:digits",
        f"--workdir={root}",
        "--seeds=0",
        f"--arms={arms}",
        *TINY,
        *epochs,
        "--config.model.time_steps=2",
        *extra,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"ablation failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


def test_a_rerun_reads_finished_arms_back_and_keeps_their_summary(tmp_path):
    root = tmp_path / "abl"
    first = ablation(root)
    arm = root / "seed0" / "baseline"
    summary = (arm / "summary.json").read_bytes()
    best = json.loads(summary)["best_test_accuracy"]
    assert json.loads(summary)["train_images_per_s"] > 0  # it trained
    assert "finished earlier" not in first.stdout + first.stderr
    table = json.loads((root / "ablation.json").read_text())["arms"]["baseline"]
    assert table["best_test_accuracy_per_seed"] == {"0": best}

    again = ablation(root)
    # The launcher's own sequence (snnjax.launch.run_in_workdir) recognises the finished arm.
    assert f"== seed 0 arm baseline -> {arm}\nfinished earlier: best test accuracy {best:.4f}" in again.stderr
    # Before the fix the arm was restored and evaluated again, and its summary.json rewritten with the
    # re-run's timings (train_time_s 0, train_images_per_s None).
    assert (arm / "summary.json").read_bytes() == summary
    assert json.loads((root / "ablation.json").read_text())["arms"]["baseline"] == table
    assert f"| baseline | {best:.4f} (one seed) |" in again.stdout
    assert not (root / workdir_layout.LOCK_FILE).exists()  # released at the end


def test_a_second_ablation_on_one_root_stops_at_once_naming_the_holder(tmp_path):
    root = tmp_path / "abl"
    os.makedirs(root)
    lock = workdir_lock.acquire(str(root))  # a live holder: this test's process
    try:
        proc = ablation(root, check=False)
    finally:
        lock.release()
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "in use" in out and str(os.getpid()) in out
    assert "Traceback" not in out and len(out.strip().splitlines()) <= 2  # no flag-help dump
    assert proc.returncode == 2
    assert not (root / "seed0").exists()  # nothing trained


def test_a_failure_mid_run_ends_in_two_lines_with_the_traceback_in_the_roots_log(tmp_path):
    root = tmp_path / "abl"
    python = python_with_file_size_cap(150_000)  # the arm's first checkpoint cannot be written
    proc = ablation(root, "--config.train.checkpoint_every_steps=3", check=False, python=python)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = [
        line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("== seed 0 arm baseline")
    ]
    assert len(lines) == 2, proc.stderr[-3000:]
    assert lines[0].startswith("snnjax: error: the disk is full (File too large writing ")
    assert "seed0/baseline/checkpoints/" in lines[0] and "run the same command again" in lines[0]
    assert lines[1] == f"(full traceback: {root}/snnjax.log; or run with --verbose)"
    assert "Traceback (most recent call last)" in (root / "snnjax.log").read_text()
    assert not (root / workdir_layout.LOCK_FILE).exists()  # released on the way out


def test_bad_seeds_end_in_one_line_before_anything_is_made(tmp_path):
    root = tmp_path / "abl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snnjax.methods.idsnn.ablation",
            "--config=configs/idsnn.py:digits",
            f"--workdir={root}",
            "--seeds=0,a",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "error: --seeds: 0,a is not a list of seeds. Fix: non-negative integers, e.g. --seeds 0,1,2."
    )
    assert not root.exists()


@pytest.mark.slow
def test_epochs_all_sets_the_teacher_and_every_arm(tmp_path):
    """``--config.epochs_all=1`` as the launcher reads it (before: ignored, so every stage trained the
    digits preset's 20 epochs). Two arms: one without the teacher, one with its transplant and KD."""
    root = tmp_path / "abl"
    teacher_args = ["--config.teacher.model.width=4", "--config.teacher.train.progress_bar=False"]
    teacher_args += ["--config.teacher.train.tensorboard=False"]
    ablation(root, *teacher_args, "--config.epochs_all=1", arms="baseline,idsnn", epochs=())
    teacher = root / "seed0" / "teacher"
    assert json.loads((teacher / "teacher_summary.json").read_text())["epochs"] == 1
    assert [r["epoch"] for r in read_metrics(str(teacher / "metrics.jsonl")) if r["kind"] == "epoch"] == [1]
    for arm in ("baseline", "idsnn"):
        wd = root / "seed0" / arm
        assert json.loads((wd / "summary.json").read_text())["epochs"] == 1
        assert [epoch for epoch, _ in ablation_lib.epoch_curve(str(wd))] == [1]
    config = json.loads((root / "ablation.json").read_text())["config"]
    assert (config["train"]["epochs"], config["teacher"]["train"]["epochs"]) == (1, 1)
