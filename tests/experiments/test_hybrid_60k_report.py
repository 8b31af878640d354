"""experiments/hybrid_60k_report.py: the verdict arithmetic, and the committed report equals the
rendering of the committed per-run JSON (docs/hybrid_fmnist_60k.json)."""

import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("hybrid_60k_report", ROOT / "experiments" / "hybrid_60k_report.py")
report_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_script)
JSON_PATH = ROOT / "docs" / "hybrid_fmnist_60k.json"


def _run(**overrides):
    run = {
        "ann_test_acc": 0.925,
        "converted": {"8": 0.60, "16": 0.85, "32": 0.90, "64": 0.915, "128": 0.92},
        "converted_spikes": {"8": 100.0, "16": 250.0, "32": 500.0, "64": 1000.0, "128": 2000.0},
        "t_finetune": 8,
        "finetuned": [0.88, 0.905, 0.91],
        "finetuned_spikes": [90.0, 95.0, 120.0],
    }
    return {**run, **overrides}


def test_verdict_by_hand():
    v = report_script.verdict({**_run(), "arch": "vgg"})
    assert v["gain_points"] == pytest.approx(31.0)  # 91.0 - 60.0
    assert v["a"] is True
    assert v["vs_long_points"] == pytest.approx(-0.5)  # 91.0 - 91.5 (T = 64 = 8 x 8)
    assert v["b"] is True
    assert v["matched_t"] == "64"  # the first T whose converted accuracy reaches 0.91 (0.90 at 32, 0.915 at 64)
    assert v["spike_ratio"] == pytest.approx(120.0 / 1000.0)
    assert v["ann_floor"] is True


def test_a_better_stdb_start_is_not_counted_as_stdb_gain():
    start = {"scaling_factor": 0.5, "accuracy": 0.82, "spikes": 300.0}
    v = report_script.verdict({**_run(finetune_start=start), "arch": "vgg"})
    assert v["gain_points"] == pytest.approx(9.0)  # 91.0 - 82.0 (the start), not 91.0 - 60.0 (converted at 8)
    worse = {**start, "accuracy": 0.30}
    assert report_script.verdict({**_run(finetune_start=worse), "arch": "vgg"})["gain_points"] == pytest.approx(31.0)


def test_verdict_fails_each_part():
    v = report_script.verdict({**_run(finetuned=[0.61]), "arch": "resnet20"})
    assert v["a"] is False and v["b"] is False and v["gain_points"] == pytest.approx(1.0)
    assert report_script.verdict({**_run(ann_test_acc=0.9199), "arch": "vgg"})["ann_floor"] is False
    missing_long = report_script.verdict({**_run(t_finetune=32, converted={"32": 0.5}), "arch": "vgg"})
    assert missing_long["vs_long_points"] is None and missing_long["b"] is False


def test_by_arch_takes_only_arch_seed_keys():
    runs = {"vgg_s0": _run(), "resnet20_s2": _run(), "vgg_delay_s0": _run(), "notes": {}}
    assert {a: sorted(s) for a, s in report_script.by_arch(runs).items()} == {"vgg": [0], "resnet20": [2]}


def test_lever_rows_sit_beside_their_base_run_against_its_long_t():
    base = _run(surrogate="stdb", snn_dropout=0.3)
    lever = _run(
        surrogate="linear", snn_dropout=0.3, converted={"8": 0.60}, converted_spikes={}, finetuned=[0.89, 0.912]
    )
    runs = {"vgg_s0": base, "vgg_linear_s0": lever, "resnet20_linear_s1": lever}  # no resnet20_s1: no row
    assert [(a, name, seed) for a, name, seed, _, _ in report_script.levers(runs)] == [("vgg", "linear", 0)]
    table = report_script.lever_report(runs)
    base_row = next(line for line in table if line.startswith("| vgg_s0 |"))
    lever_row = next(line for line in table if line.startswith("| vgg_linear_s0 |"))
    # base: 88.00, 90.50, 91.00 -> 91.00 - 91.50 (converted at T = 64) = -0.50; lever: 91.20 - 91.50 = -0.30
    assert base_row.endswith("| 88.00 | 90.50 | 91.00 | 91.50 (T=64) | -0.50 |")
    assert lever_row.endswith("| 89.00 | 91.20 | - | 91.50 (T=64) | -0.30 |")
    assert "| linear | 0.3 |" in lever_row and "| stdb | 0.3 |" in base_row
    assert report_script.lever_report({"vgg_s0": base}) == []


def test_the_committed_report_is_the_rendering_of_the_committed_runs():
    runs = json.loads(JSON_PATH.read_text())["runs"]
    assert (ROOT / "docs" / "hybrid_60k.md").read_text() == report_script.report(runs)
