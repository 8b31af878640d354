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
