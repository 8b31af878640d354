"""A finished run, recognised at launch: the same command again prints its summary and exits.

When a pipeline returns, the launcher writes the run's config to ``WORKDIR/run_config.json``
(:func:`mark_finished`). A later launch with the same config on that workdir finds it
(:func:`finished_summary`) and reads ``summary.json`` instead of loading data and compiling:
``summary.json`` stays byte-identical (its timings are those of the run that trained). Keys that do
not change what is trained (progress bar, TensorBoard, where the data lives) may differ; any other
change (e.g. more epochs) resumes the run as before.
"""

from __future__ import annotations

import json
from typing import Any

import ml_collections

from snnjax import workdir_layout
from snnjax.train.run_outputs import write_json

# (section, key) pairs that do not change what a run trains.
IGNORED = {
    ("train", "progress_bar"),
    ("train", "tensorboard"),
    ("train", "min_free_disk_mb"),
    ("data", "data_dir"),
    ("data", "download"),
}


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` through JSON (tuples -> lists) without the :data:`IGNORED` keys."""
    out = json.loads(json.dumps(config, sort_keys=True, default=str))
    for section, key in IGNORED:
        if isinstance(out.get(section), dict):
            out[section].pop(key, None)
    return out


def mark_finished(workdir: str, config: ml_collections.ConfigDict) -> None:
    """Record that ``config`` ran to its end in ``workdir`` (process 0 only)."""
    write_json(workdir_layout.finished_config(workdir), config.to_dict())


def finished_summary(workdir: str, config: ml_collections.ConfigDict) -> dict[str, Any] | None:
    """The ``summary.json`` of a run of ``config`` that finished in ``workdir``, else None."""
    marker, summary = workdir_layout.finished_config(workdir), workdir_layout.summary(workdir)
    try:
        with open(marker) as f:
            done = json.load(f)
        with open(summary) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    return result if _comparable(done) == _comparable(config.to_dict()) else None
