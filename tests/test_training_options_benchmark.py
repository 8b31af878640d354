"""benchmarks/training_options.py at tiny sizes: one JSON line per (arm, T), ratios to lif, and SLTT's memory flat in T."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lif_and_sltt_lines_ratios_and_sltt_memory_flat_in_t():
    # The digits baseline preset (no KD teacher to compile), width 4, batch 4: four small compiles.
    cmd = [sys.executable, "benchmarks/training_options.py", "--config", "configs/baseline.py:digits"]
    cmd += ["--width", "4", "--batch", "4", "--T", "2,4", "--arms", "sltt", "--rounds", "1", "--steps", "1"]
    cmd += ["--warmup", "0"]
    # XLA's LLVM backend at -O0 halves the compile time; buffer assignment (the memory figures) is XLA's own.
    env = {**os.environ, "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True).stdout
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["arm"], r["T"]) for r in records] == [("lif", 2), ("sltt", 2), ("lif", 4), ("sltt", 4)]
    fields = {"arm", "T", "width", "batch", "kd", "compile_s", "step_ms_median", "cpu_ms_median", "step_ms", "vs_lif"}
    fields |= {"temp_bytes", "argument_bytes", "output_bytes", "alias_bytes", "memory_bytes"}
    by = {(r["arm"], r["T"]): r for r in records}
    for r in records:
        assert fields <= set(r), fields - set(r)
        assert r["width"] == 4 and r["batch"] == 4 and r["kd"] is False and len(r["step_ms"]) == 1
        assert r["memory_bytes"] == r["temp_bytes"] + r["argument_bytes"] + r["output_bytes"] - r["alias_bytes"]
        lif = by[("lif", r["T"])]
        assert r["vs_lif"]["temp_memory"] == round(r["temp_bytes"] / lif["temp_bytes"], 3)
        assert r["vs_lif"]["step_time"] == round(r["step_ms_median"] / lif["step_ms_median"], 3)
    assert by[("lif", 2)]["vs_lif"]["step_time"] == 1.0
    assert (by[("sltt", 2)]["through_time"], by[("lif", 2)]["through_time"]) == ("sltt", "bptt")
    # BPTT keeps every step's activations for its backward pass; SLTT one step's at a time.
    assert by[("lif", 4)]["temp_bytes"] > 1.2 * by[("lif", 2)]["temp_bytes"]
    assert by[("sltt", 4)]["temp_bytes"] <= by[("sltt", 2)]["temp_bytes"]
    assert "| T | arm | temp MiB |" in out  # the summary table
