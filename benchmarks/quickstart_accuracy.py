"""The quick start's final accuracy on this machine's CPU, recorded beside the other CPUs' values.

The quick start (``python launch.py --config configs/idsnn.py:digits``, pinned versions) is
deterministic on one machine, but XLA's CPU kernels differ between processors (vector widths, fused
multiply-adds), and spiking thresholds turn float-rounding differences into different spikes: the
same command ends at a different accuracy on an AMD EPYC and on an Intel Xeon. README.md and
docs/performance.md quote every measured value with its CPU, from
``benchmarks/results/quickstart_accuracy.json`` (``tests/test_quoted_figures.py`` holds every copy).

    python benchmarks/quickstart_accuracy.py                       # run the quick start (~2 min), record it
    python benchmarks/quickstart_accuracy.py --workdir runs/idsnn_digits   # record a finished quick start

A value for another CPU stays in the file (``values.runs``: one entry per CPU model, the newest wins).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import _results

from snnjax import workdir_layout

QUICK_START = ["launch.py", "--config", "configs/idsnn.py:digits"]
NAME = "quickstart_accuracy"


def run_quick_start(workdir: str) -> None:
    """Run the README's quick start into ``workdir`` (resumes or skips when it is there already)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, *QUICK_START, "--workdir", workdir], cwd=root, check=True)


def measured_run(workdir: str) -> dict:
    """This machine's entry: its CPU, the summary's accuracies and versions."""
    with open(workdir_layout.summary(workdir)) as f:
        summary = json.load(f)
    return {
        "cpu": _results.machine()["cpu"],
        "best_test_accuracy": round(float(summary["best_test_accuracy"]), 4),
        "final_test_accuracy": round(float(summary["final_test_accuracy"]), 4),
        "packages": summary.get("environment", {}).get("packages", {}),
        "source": "measured by this script",
    }


def merged(runs: list[dict], new: dict) -> list[dict]:
    """``runs`` with ``new`` replacing the entry of the same CPU model (order: first seen)."""
    out = [r for r in runs if r["cpu"] != new["cpu"]]
    index = next((i for i, r in enumerate(runs) if r["cpu"] == new["cpu"]), len(out))
    return out[:index] + [new] + out[index:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="a finished quick-start workdir to record (default: run one)")
    args = parser.parse_args()
    before = _results.load()
    if args.workdir:
        workdir = args.workdir
    else:
        workdir = tempfile.mkdtemp(prefix="snnjax_quickstart_")
        run_quick_start(workdir)
    previous = _results.RESULTS_DIR / f"{NAME}.json"
    runs = json.loads(previous.read_text())["values"]["runs"] if previous.exists() else []
    entry = measured_run(workdir)
    values = {"command": "python " + " ".join(QUICK_START), "runs": merged(runs, entry)}
    path = _results.write(NAME, values, before)
    print(f"{entry['cpu']}: best test accuracy {entry['best_test_accuracy']:.4f} -> {path}")


if __name__ == "__main__":
    main()
