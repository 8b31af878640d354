"""benchmarks/preset_step.py on the digits IDSNN preset: one JSON line per process, then the summary."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_times_the_preset_step_with_kd_and_summarises():
    cmd = [sys.executable, "benchmarks/preset_step.py", "--config", "configs/idsnn.py:digits"]
    cmd += ["--warmup", "1", "--steps", "2"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
    lines = [json.loads(line) for line in out.strip().splitlines()]
    record, summary = lines[0], lines[-1]["summary"]
    assert len(lines) == 2  # one root, one process
    assert record["kd"] is True and record["batch"] == 64 and record["config"] == "configs/idsnn.py:digits"
    assert len(record["step_ms"]) == 2 and min(record["step_ms"]) <= record["step_ms_median"] <= max(record["step_ms"])
    assert abs(record["images_per_s"] - 64 / (record["step_ms_median"] / 1e3)) < 0.5
    assert summary == {record["root"]: {"step_ms": record["step_ms_median"], "vs_first": 1.0}}


def test_save_writes_one_results_record_with_every_line_and_the_summary(tmp_path, monkeypatch):
    """``--save NAME``: ``benchmarks/results/NAME.json`` in ``_results.py``'s shape (here redirected to tmp_path),
    its ``values`` the printed measurement lines and summary (the worker processes are stubbed)."""
    import importlib.util
    import types

    spec = importlib.util.spec_from_file_location("preset_step", os.path.join(ROOT, "benchmarks", "preset_step.py"))
    preset_step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(preset_step)
    monkeypatch.setattr(sys, "path", list(sys.path))  # _results_module() adds benchmarks/: undone after the test
    results = preset_step._results_module()
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    medians = iter([500.0, 600.0, 510.0, 590.0])
    real_run = subprocess.run

    def fake_run(cmd, **kwargs):
        if "--worker" not in cmd:  # git, for the record's commit
            return real_run(cmd, **kwargs)
        root = cmd[cmd.index("--root") + 1]
        line = {"root": root, "commit": "abc1234", "step_ms_median": next(medians), "load1": 1.0}
        return types.SimpleNamespace(stdout=json.dumps(line) + "\n")

    monkeypatch.setattr(preset_step.subprocess, "run", fake_run)
    preset_step.main(["--config", "configs/idsnn.py:digits", "--root", "/a", "--root", "/b", "--save", "regression"])
    record = json.loads((tmp_path / "regression.json").read_text())
    assert {"name", "command", "commit", "machine", "date_utc", "load_before", "load_after", "values"} <= set(record)
    assert record["name"] == "regression" and len(record["commit"]) == 40
    assert [r["step_ms_median"] for r in record["values"]["records"]] == [500.0, 600.0, 510.0, 590.0]
    assert record["values"]["summary"] == {
        "/a": {"step_ms": 505.0, "vs_first": 1.0},
        "/b": {"step_ms": 595.0, "vs_first": round(595.0 / 505.0, 3)},
    }
