"""What the experiment report scripts share: reading a finished run's files, and seed statistics.

Imported by ``experiments/*_60k_report.py`` (run as scripts: ``experiments/`` is on ``sys.path``).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable
from typing import Any


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object at ``path``, or None when the file does not exist (yet)."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def epoch_records(workdir: str, stage: str) -> list[dict[str, Any]]:
    """The evaluated epoch records of ``stage`` in ``workdir/metrics.jsonl``, one per epoch in order
    (a resumed run may log an epoch again: its last record counts)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip().startswith("{")]
    rows = [r for r in rows if r.get("stage") == stage and r.get("kind") == "epoch" and "test_accuracy" in r]
    by_epoch = {int(round(float(r["epoch"]))): r for r in rows}
    return [by_epoch[e] for e in sorted(by_epoch)]


def queue_facts(workdir: str) -> dict[str, Any]:
    """Command, commit(s) and load recorded by experiments/evidence_queue.sh (empty outside the queue)."""
    queued = read_json(os.path.join(workdir, "queue_run.json")) or {}
    return {
        "command": queued.get("command"),
        "commit": queued.get("commit"),
        "commits": queued.get("commits"),
        "load_average_at_end": queued.get("load_average_at_end"),
    }


def seed_key(key: str) -> tuple[str, int] | None:
    """``"<arm>_s<seed>"`` -> ``(arm, seed)``; None for any other key."""
    arm, _, seed = key.rpartition("_s")
    return (arm, int(seed)) if arm and seed.isdigit() else None


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for fewer than two values)."""
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student's t interval of the mean of ``values`` (None for fewer than two values)."""
    if len(values) < 2:
        return None
    from scipy import stats

    mean, std = mean_std(values)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * std / math.sqrt(len(values))
    return mean - half, mean + half


def collect_runs(root: str, experiment: str, runs: dict[str, Any], run_entry) -> dict[str, Any]:
    """``runs`` with every finished ``ROOT/<experiment>/<name>`` run (re-)recorded by ``run_entry(workdir)``
    (None while a run is unfinished; the runs recorded earlier are kept)."""
    out = dict(runs)
    folder = os.path.join(root, experiment)
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        entry = run_entry(os.path.join(folder, name))
        if entry is not None:
            out[name] = entry
    return out


def write_report_files(
    argv: list[str],
    script: str,
    collect: Callable[[str, dict[str, Any]], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
    json_path: str,
    report_path: str,
    plot: Callable[[dict[str, Any], str], None] | None = None,
    plot_path: str | None = None,
    should_plot: Callable[[dict[str, Any]], Any] = bool,
) -> None:
    """A report script's ``main``: ``argv = [script, ROOT]``; the runs under ROOT merged into the
    per-run JSON at ``json_path`` (runs recorded earlier kept: ``collect(root, old)``), the tables
    written to ``report_path``, and the plot to ``plot_path`` when ``should_plot(runs)``."""
    if len(argv) != 2:
        raise SystemExit(f"usage: python experiments/{script} ROOT (the evidence queue's root)")
    runs = collect(argv[1], (read_json(json_path) or {}).get("runs", {}))
    with open(json_path, "w") as f:
        json.dump({"runs": runs}, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(report_path, "w") as f:
        f.write(report(runs))
    written = [json_path, report_path]
    if plot is not None and should_plot(runs):
        plot(runs, plot_path)
        written.append(plot_path)
    print(f"{len(runs)} run(s) -> {', '.join(map(str, written))}")
