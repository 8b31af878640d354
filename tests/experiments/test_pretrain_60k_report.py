"""experiments/pretrain_60k_report.py: time to accuracy by hand, on made-up runs."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pretrain_60k_report", ROOT / "experiments" / "pretrain_60k_report.py")
report_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_script)

SCRATCH = {
    "test_acc": [0.80, 0.88, 0.905, 0.903],
    "cumulative_seconds": [600.0, 1200.0, 1800.0, 2400.0],
    "pretraining_seconds": 0.0,
}
PIPE_S = {"test_acc": [0.90, 0.906, 0.91], "cumulative_seconds": [900.0, 1500.0, 2100.0], "pretraining_seconds": 300.0}


def test_time_to_the_scratch_best_and_its_ratio():
    t_arm, ratio, target = report_script.time_ratio(PIPE_S, SCRATCH)
    assert target == 0.905 and t_arm == 1500.0  # 0.90 < 0.905 <= 0.906
    assert ratio == pytest.approx(1500.0 / 1800.0)
    never = {"test_acc": [0.5, 0.6], "cumulative_seconds": [1.0, 2.0]}
    assert report_script.time_ratio(never, SCRATCH)[:2] == (None, None)


def test_report_rows_and_floor():
    text = report_script.report({"scratch_s0": SCRATCH, "pipe_s_s0": PIPE_S})
    assert "| pipe_s | 0 | 91.00 | 3 | 5.0 | 90.50 (scratch) | 25.0 | 0.833 | 0.125 |" in text
    assert "| scratch | 0 | 90.50 | 4 | 0.0 | 90.50 (scratch) | 30.0 | 1.000 | - |" in text
    assert "floor 90.0 % on every seed: met." in text and "Sizing" not in text


def test_an_arm_that_stopped_at_its_target_says_so():
    stopped = {**PIPE_S, "test_acc": [0.90, 0.906], "cumulative_seconds": [900.0, 1500.0]}
    stopped["stop_at_accuracy"] = {"target": 0.905, "reached_epoch": 2}
    text = report_script.report({"scratch_s0": SCRATCH, "pipe_s_s0": stopped})
    assert "| pipe_s | 0 | 90.60 | 2 (stopped at its target) | 5.0 | 90.50 (scratch) | 25.0 | 0.833 | 0.125 |" in text
    plateaued = {**SCRATCH, "stop_on_plateau": {"epochs": 2, "min_gain": 0.003, "stopped_epoch": 4}}
    assert "| scratch | 0 | 90.50 | 4 (stopped: plateau) |" in report_script.report({"scratch_s0": plateaued})


def test_a_sizing_run_is_a_row_of_its_own_not_an_arm():
    calib = {
        **SCRATCH,
        "width": 8,
        "time_steps": 4,
        "epoch_seconds": [600.0, 600.0, 600.0, 600.0],
        "load_average_at_end": [1.0, 1.5, 2.0],
        "schedule": report_script._schedule_text(
            {"schedule": "multistep", "milestones": [2, 4, 6, 8], "gamma": 0.3, "lr": 0.05}
        ),
    }
    text = report_script.report({"scratch_s0": SCRATCH, "calib_w8_scratch_s0": calib})
    assert (
        "| calib_w8_scratch_s0 | 8 | 4 | multistep x0.3 at 2/4/6/8, lr 0.05 | 80.00, 88.00, 90.50, 90.30 | 90.50 "
        "| 600, 600, 600, 600 | 1.00 / 1.50 / 2.00 |"
    ) in text
    assert report_script._schedule_text({"schedule": "cosine", "lr": 0.05}) == "cosine, lr 0.05"
    assert "| calib_w8_scratch" not in text.split("Sizing")[0]  # not among the arms


def test_the_committed_report_is_the_rendering_of_the_committed_runs():
    import json

    runs = json.loads((ROOT / "docs" / "pretrain_fmnist_60k.json").read_text())["runs"]
    assert (ROOT / "docs" / "pretrain_60k.md").read_text() == report_script.report(runs)
