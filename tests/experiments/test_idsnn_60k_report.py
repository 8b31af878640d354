"""docs/idsnn_60k_ablation.md and the docs quoting it say what docs/fmnist_reference_60k.json records.

The 60k ablation's 12 runs take hours on a CPU; their per-run records are committed. These tests
re-render the report from those records, so a hand-edited or stale table fails here.
"""

import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("idsnn_60k_report", ROOT / "experiments" / "idsnn_60k_report.py")
report_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_script)
RUNS = json.loads((ROOT / "docs" / "fmnist_reference_60k.json").read_text())["runs"]
REPORT = (ROOT / "docs" / "idsnn_60k_ablation.md").read_text()


def test_the_committed_report_is_the_rendering_of_the_committed_runs():
    assert REPORT == report_script.report(RUNS, epochs=3)


def test_results_from_runs_takes_only_arm_seed_keys():
    runs = {
        "baseline_s0": {"test_accuracy_per_epoch": [0.8, 0.9], "best_test_accuracy": 0.9, "final_test_accuracy": 0.9},
        "idsnn_init_only_s0": {"test_accuracy_per_epoch": [0.1], "best_test_accuracy": 0.1, "final_test_accuracy": 0.1},
        "kd_control_alpha0.9_s2": {
            "test_accuracy_per_epoch": [0.1],
            "best_test_accuracy": 0.1,
            "final_test_accuracy": 0.1,
        },
        "ablation_teacher_s0": {
            "test_accuracy_per_epoch": [0.9],
            "best_test_accuracy": 0.9,
            "final_test_accuracy": 0.9,
        },
    }
    assert report_script.results_from_runs(runs) == {
        "baseline": {0: {"best": 0.9, "final": 0.9, "curve": [(1, 0.8), (2, 0.9)]}}
    }


@pytest.mark.parametrize("arm", ["baseline", "init_only", "kd_only", "idsnn"])
def test_twelve_runs_three_seeds_per_arm(arm):
    per_seed = report_script.results_from_runs(RUNS)[arm]
    assert sorted(per_seed) == [0, 1, 2]
    assert all(len(r["curve"]) == 3 for r in per_seed.values())


@pytest.mark.parametrize("doc", ["docs/idsnn.md"])
def test_the_docs_quote_the_report_table_rows(doc):
    """The table the docs show is the report's, row for row (the docs may show fewer columns elsewhere)."""
    text = (ROOT / doc).read_text()
    arm_rows = [
        line
        for line in REPORT.splitlines()
        if line.startswith(("| baseline |", "| init_only |", "| kd_only |", "| idsnn |"))
    ]
    first_table = arm_rows[:4]
    assert all(row in text for row in first_table), [row for row in first_table if row not in text]


def test_the_effects_docs_idsnn_md_shows_are_the_reports():
    """docs/idsnn.md shows the effects with fewer words; its per-seed differences and intervals are the report's."""
    text = (ROOT / "docs" / "idsnn.md").read_text()
    effect_rows = [
        line.split(" | ")
        for line in REPORT.splitlines()
        if " - " in line and line.count(" | ") == 6 and not line.startswith("| effect |")
    ]
    assert len(effect_rows) == 5
    for cells in effect_rows:
        per_seed, mean, ci = cells[2], cells[3], cells[5]
        assert f"| {per_seed} | " in text and f" | {ci} | " in text, cells
        assert mean in text


def test_ablation_key_tells_ablation_runs_from_the_rest():
    assert report_script.ablation_key("init_only_s12") == ("init_only", 12)
    assert report_script.ablation_key("idsnn_init_only_s0") is None  # the earlier single run
    assert report_script.ablation_key("kd_control_alpha0.9_s2") is None
    assert report_script.ablation_key("ablation_teacher_s0") is None
