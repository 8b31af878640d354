"""Pieces every pipeline ends with: the run summary and the curves plot."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from snnjax.train import metric_writer

SUMMARY_FILE = "summary.json"


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Write JSON atomically (a crash never leaves a half-written file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def spike_summary(result, splits, num_examples: int = 256) -> dict[str, Any]:
    """Firing rates, synaptic operations and the energy estimate of a trained stage (one forward pass)."""
    from snnjax.analysis import spike_summary as summarize
    from snnjax.analysis.workdir import test_inputs

    return summarize(result.model, result.state.variables, test_inputs(splits, num_examples))


def finish_run(workdir: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Write ``workdir/summary.json`` and ``workdir/curves.png``; print the headline."""
    write_json(os.path.join(workdir, SUMMARY_FILE), summary)
    metrics_path = os.path.join(workdir, metric_writer.METRICS_FILE)
    if os.path.exists(metrics_path):
        metric_writer.plot_curves(metric_writer.read_metrics(metrics_path), os.path.join(workdir, "curves.png"))
    print(
        f"best test accuracy {summary['best_test_accuracy']:.4f}; summary in {workdir}/{SUMMARY_FILE}", file=sys.stderr
    )
    return summary
