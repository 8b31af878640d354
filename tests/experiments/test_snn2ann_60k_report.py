"""experiments/snn2ann_60k_report.py: ratios and paired differences by hand, on made-up runs."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("snn2ann_60k_report", ROOT / "experiments" / "snn2ann_60k_report.py")
report_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_script)


def _run(acc, seconds, memory, rss, spikes, t):
    return {
        "test_acc": acc,
        "epoch_seconds": seconds,
        "compiled_memory_bytes": memory,
        "peak_rss_bytes": rss,
        "spikes_per_image": spikes,
        "time_steps": t,
    }


RUNS = {
    "bptt_t8_s0": _run([0.90, 0.912], [999.0, 100.0], 1000, 4000, 300.0, 8),
    "bptt_t8_s1": _run([0.90, 0.914], [120.0, 120.0], 1000, 4000, 200.0, 8),
    "snn2ann_t5_s0": _run([0.88, 0.905], [500.0, 40.0], 300, 2000, 90.0, 5),
    "snn2ann_t5_s1": _run([0.88, 0.909], [60.0, 60.0], 200, 3000, 80.0, 5),
    "teacher_s0": _run([0.5], [1.0], 1, 1, 1.0, 1),
}


def test_ratios_by_hand_leave_out_the_first_epoch():
    r = report_script.ratios(RUNS["snn2ann_t5_s0"], RUNS["bptt_t8_s0"])
    assert r == pytest.approx({"time": 0.4, "memory": 0.3, "rss": 0.5, "spikes": 0.3})


def test_the_time_ratio_compares_each_runs_least_disturbed_epoch():
    # An epoch slowed by other work on the machine (300 s) does not move the ratio: 40 / 100, not 40 / 200.
    slowed = {**RUNS["bptt_t8_s0"], "epoch_seconds": [999.0, 100.0, 300.0, 100.0]}
    assert report_script.ratios(RUNS["snn2ann_t5_s0"], slowed)["time"] == pytest.approx(0.4)


def test_report_pairs_by_seed():
    text = report_script.report(RUNS)
    # paired differences: -0.7 and -0.5 points -> mean -0.60; t(0.975, 1) = 12.706, sd 0.1414 -> half 1.27
    assert "| snn2ann_t5 | 5 | 2 | 90.70 ± 0.28 | 90.50, 90.90 | -0.60 (-1.87 to +0.67) |" in text
    # time 0.4 and 0.5 -> 0.450x; memory 0.3, 0.2 -> 0.250x; spikes 0.3, 0.4 -> 0.350x
    assert "| 0.450x ± 0.071 | 0.250x ± 0.071 |" in text and "0.350x ± 0.071 |" in text
    assert "BPTT floor (91.0 % on every seed): met." in text
    assert "- snn2ann_t5 vs bptt_t8 (2 seed(s)): accuracy -0.60 points (comparable)" in text
    assert "teacher" not in text


def test_the_committed_report_is_the_rendering_of_the_committed_runs():
    import json

    runs = json.loads((ROOT / "docs" / "snn2ann_fmnist_60k.json").read_text())["runs"]
    assert (ROOT / "docs" / "snn2ann_60k.md").read_text() == report_script.report(runs)


def test_calibration_runs_are_tabled_with_their_recipe_and_left_out_of_the_comparison():
    recipe = {
        "net": "bptt_vgg",
        "width": 16,
        "train_images": 10000,
        "epochs": 2,
        "dropout": [0.25, 0.25, 0.0],
        "weight_decay": 5e-4,
        "membrane_dropout": None,
    }
    runs = {
        **RUNS,
        "calib10k_bptt_officialreg_s0": {**_run([0.7351, 0.7703], [1.0, 1.0], 1, 1, 1.0, 8), "recipe": recipe},
    }
    text = report_script.report(runs)
    row = "| calib10k_bptt_officialreg_s0 | bptt_vgg (width 16) | 8 | 10,000 | 2 | 0.25/0.25/0 | 0.0005 | - | 73.51, 77.03 |"
    assert row in text
    assert text.startswith(report_script.report(RUNS).rstrip("\n"))  # the comparison is unchanged


def test_recipe_reads_the_run_config():
    config = {
        "model": {"name": "snn2ann_vgg", "width": 16, "dropout": [0.0], "membrane_dropout": 0.5},
        "data": {"train_subset": 0},
        "train": {"epochs": 8},
        "optim": {"weight_decay": 0.0},
    }
    assert report_script.recipe(config) == {
        "net": "snn2ann_vgg",
        "width": 16,
        "train_images": 60000,
        "epochs": 8,
        "dropout": [0.0],
        "weight_decay": 0.0,
        "membrane_dropout": 0.5,
    }
    bptt = {**config, "model": {**config["model"], "name": "bptt_vgg"}}
    assert report_script.recipe(bptt)["membrane_dropout"] is None


def test_docs_evidence_quotes_the_calibration_as_the_json_records_it():
    import json

    runs = json.loads((ROOT / "docs" / "snn2ann_fmnist_60k.json").read_text())["runs"]
    text = " ".join((ROOT / "docs" / "evidence.md").read_text().split())  # line breaks do not matter
    final = {name: f"{100 * run['test_acc'][-1]:.2f} %" for name, run in runs.items()}
    assert f"ended at {final['bptt_t8_officialreg_s0']} after 8 epochs" in text
    assert f"decay {final['calib10k_bptt_wd0_s0']} (official {final['calib10k_bptt_officialreg_s0']}" in text
    assert f"without dropout and weight decay {final['calib10k_bptt_noreg_s0']}" in text
    snn2ann = f"({final['calib10k_snn2ann_t8_officialreg_s0']} -> {final['calib10k_snn2ann_t8_noreg_s0']})"
    assert snn2ann in text
