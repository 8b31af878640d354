"""experiments/psn_init_digits.py: a made-up ROOT read and rendered (means, stds and firing rates checked by
hand, an unfinished run left out); its commands are the arms' launch commands; the committed report equals
the rendering of the committed per-run JSON, and the training-options page quotes that JSON's numbers."""

import importlib.util
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))  # the script imports _records as the report scripts do
_spec = importlib.util.spec_from_file_location("psn_init_digits", ROOT / "experiments" / "psn_init_digits.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def _write_run(workdir, accuracies, rates, summary=True):
    workdir.mkdir(parents=True)
    rows = [
        {"stage": "train", "kind": "epoch", "epoch": e, "test_accuracy": a} for e, a in enumerate(accuracies, start=1)
    ]
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if summary:
        record = {
            "best_test_accuracy": max(accuracies),
            "final_test_accuracy": accuracies[-1],
            "spikes": {"firing_rates": {f"layer{i}": r for i, r in enumerate(rates)}},
            "train_time_s": 60.0,
            "environment": {"git": {"commit": "c" * 40}},
        }
        (workdir / "summary.json").write_text(json.dumps(record))


def test_runs_are_read_and_rendered_with_hand_computed_means(tmp_path):
    folder = tmp_path / "psn_init_digits"
    _write_run(folder / "psn_s0", [0.5, 0.9], [0.1, 0.3])
    _write_run(folder / "psn_s1", [0.6, 0.8], [0.2, 0.2])
    _write_run(folder / "lif_s0", [0.7, 0.95], [0.25])
    _write_run(folder / "psn_s2", [0.1], [0.5], summary=False)  # unfinished: left out
    runs = script.collect(str(tmp_path), {})
    assert sorted(runs) == ["lif_s0", "psn_s0", "psn_s1"]
    assert runs["psn_s0"]["test_accuracy_per_epoch"] == [0.5, 0.9] and runs["psn_s0"]["mean_firing_rate"] == 0.2
    text = script.report(runs)
    # psn: best 90 and 80 -> mean 85.0, sample std 7.07; final the same; firing (0.2 + 0.2) / 2 = 20 %.
    assert "| `psn` | PSN full, psn_init=lif (the default) | 2 | 85.0 ± 7.1 % | 85.0 ± 7.1 % | 20.0 % |" in text
    assert (
        "| `lif` | LIF (decay 0.25, threshold 0.5, hard reset): the reference | 1 | 95.0 % | 95.0 % | 25.0 % |" in text
    )
    assert "| `psn_tet` |" in text and "(not run yet)" in text
    assert "- `psn`: 50 90" in text


def test_each_arm_changes_the_digits_baseline_by_its_own_overrides():
    cmd = script.command("psn_spikingjelly", 2, "W")
    assert cmd[1:3] == ["launch.py", "--config=configs/baseline.py:digits"]
    assert "--config.model.psn_init=spikingjelly" in cmd and cmd[-2:] == ["--config.seed=2", "--workdir=W"]
    assert "--config.model.neuron=psn" not in script.command("lif_decay0", 0, "W")
    names = [n for n, _, _ in script.run_names()]
    assert len(names) == len(set(names)) == len(script.ARMS) + 6


def test_the_committed_report_renders_the_committed_json_and_the_page_quotes_it():
    runs = json.loads((ROOT / "docs" / "psn_init_digits.json").read_text())["runs"]
    assert (ROOT / "docs" / "psn_init_digits.md").read_text() == script.report(runs)
    page = (ROOT / "docs" / "training_options.md").read_text()
    for arm in ("lif", "psn", "psn_spikingjelly", "sew_psn_spikingjelly"):
        rows = [r for r in runs.values() if r["arm"] == arm]
        best = script._pct(script._records.mean_std([100 * r["best_test_accuracy"] for r in rows]))
        assert f"`{arm}` {best}" in page, (arm, best)
