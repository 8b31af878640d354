"""The files a run writes besides its checkpoints and metrics, from process 0 only: JSON and text
written whole (:func:`write_json` atomically, :func:`write_text`), and what every pipeline ends with,
``summary.json`` and ``curves.png`` (:func:`finish_run`).

In a multi-process run the other processes write nothing here (:mod:`snnjax.train.distributed`).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from snnjax import workdir_layout
from snnjax.train import distributed, metric_writer, provenance


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Write JSON atomically (a crash never leaves a half-written file); process 0 only."""
    if not distributed.is_primary():
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def finish_run(workdir: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Write ``workdir/summary.json`` and ``workdir/curves.png``; print the headline (process 0 only)."""
    if not distributed.is_primary():
        return summary
    summary = {**summary, "environment": provenance.environment()}  # what the numbers came from
    write_json(workdir_layout.summary(workdir), summary)
    metrics_path = workdir_layout.metrics(workdir)
    if os.path.exists(metrics_path):
        metric_writer.plot_curves(
            metric_writer.read_metrics(metrics_path),
            workdir_layout.curves(workdir),
            kd_stages=metric_writer.kd_stages(summary),
            tet_stages=metric_writer.tet_stages(summary),
        )
    print(
        f"best test accuracy {summary['best_test_accuracy']:.4f}; summary in {workdir_layout.summary(workdir)}",
        file=sys.stderr,
    )
    return summary


def write_text(path: str, text: str) -> None:
    """Write a text file (a report); process 0 only."""
    if distributed.is_primary():
        with open(path, "w") as f:
            f.write(text)
