"""Pretraining as a bridge on all 60,000 Fashion-MNIST images: time to accuracy, per-run JSON, report, plot.

    python experiments/pretrain_60k_report.py /work/evidence     # the ROOT of experiments/evidence_queue.sh

Reads ``ROOT/pretrain/<arm>_s<seed>/`` (arms ``scratch``, ``pipe_s``, ``pipe_d_official``,
``pipe_d_full``, ``scratch_events``; a run counts once its ``summary.json`` is written), records one
entry per run in ``docs/pretrain_fmnist_60k.json`` (``runs.<arm>_s<seed>``: test accuracy and
cumulative training seconds after every epoch, the ANN pretraining's seconds included for pipe-S and
pipe-D, whose pipe-D arms reuse the same seed's pipe-S pretraining), and renders ``docs/pretrain_60k.md``
and ``docs/pretrain_60k.png``.

A pretrained arm stops after the first epoch that reaches its scratch SNN's best accuracy (the queue
passes it as ``train.stop_at_accuracy``; the same run cut short, its schedule unchanged): the time to
that accuracy is what the claim is about, as in MLPerf's time-to-target.

Time to accuracy, per seed: the first cumulative time at which an arm reaches the best accuracy of its
scratch SNN (static arms: ``scratch``; event arms: ``scratch_events``), and its ratio to the time the
scratch SNN needed to reach that best (the paper: pipe-S 1/8, pipe-D 1/2). Seconds are training
seconds (no compilation, evaluation or checkpointing), from runs of one queue on one machine; the load
average at each run's end is recorded beside them.

Runs under ``ROOT/pretrain/`` that are not arms (``calib_*``: the runs that sized the network, e.g.
``calib_w8_scratch_s0``, the scratch SNN at width 8) are recorded too, in a sizing table with the
width, T and training seconds per epoch read from each run's ``run_config.json`` and metrics.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _records import collect_runs, epoch_records, mean_std, queue_facts, read_json, seed_key, write_report_files  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
JSON_PATH = os.path.join(REPO, "docs", "pretrain_fmnist_60k.json")
REPORT_PATH = os.path.join(REPO, "docs", "pretrain_60k.md")
PLOT_PATH = os.path.join(REPO, "docs", "pretrain_60k.png")
ARMS = ("scratch", "pipe_s", "pipe_d_official", "pipe_d_full", "scratch_events")
REFERENCE = {"pipe_s": "scratch", "pipe_d_official": "scratch_events", "pipe_d_full": "scratch_events"}
PAPER_RATIO = {"pipe_s": 1 / 8, "pipe_d_official": 1 / 2, "pipe_d_full": 1 / 2}
SCRATCH_FLOOR = 0.90


def pretraining_seconds(summary: dict[str, Any]) -> float:
    """The ANN pretraining's training seconds behind a fine-tuned run (0 for a scratch run); a pretraining
    restored from another workdir counts that workdir's."""
    pre = summary.get("pretrain") or {}
    source = pre.get("restored_from")
    if source:
        restored = read_json(os.path.join(source, "pretrain_summary.json")) or {}
        if restored.get("train_time_s") is not None:
            return float(restored["train_time_s"])
    return float(pre.get("train_time_s") or 0.0)


def run_entry(workdir: str) -> dict[str, Any] | None:
    """The finished run's record (None while it runs)."""
    summary = read_json(os.path.join(workdir, "summary.json"))
    if summary is None:
        return None
    rows = epoch_records(workdir, summary["stage"])
    config = read_json(os.path.join(workdir, "run_config.json")) or {}
    model, optim = config.get("model", {}), config.get("optim", {})
    start = pretraining_seconds(summary) if summary.get("pretrained") else 0.0
    cumulative, total = [], start
    for r in rows:
        total += float(r["epoch_train_seconds"])
        cumulative.append(round(total, 1))
    return {
        "test_acc": [round(float(r["test_accuracy"]), 4) for r in rows],
        "cumulative_seconds": cumulative,
        "pretraining_seconds": round(start, 1),
        "input": summary.get("input"),
        "width": model.get("width"),
        "time_steps": model.get("time_steps"),
        "schedule": _schedule_text(optim),
        "epoch_seconds": [round(float(r["epoch_train_seconds"]), 1) for r in rows],
        # train.stop_at_accuracy: the target (its scratch SNN's best) and the epoch that reached it.
        "stop_at_accuracy": summary.get("stop_at_accuracy"),
        "stop_on_plateau": summary.get("stop_on_plateau"),  # a scratch SNN stopped when it stopped improving
        **queue_facts(workdir),
    }


def collect(root: str, runs: dict[str, Any]) -> dict[str, Any]:
    """``runs`` with every finished ``ROOT/pretrain/<run>`` recorded."""
    return collect_runs(root, "pretrain", runs, run_entry)


def by_arm(runs: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for key, run in runs.items():
        parsed = seed_key(key)
        if parsed and parsed[0] in ARMS:
            out.setdefault(parsed[0], {})[parsed[1]] = run
    return out


def time_to(run: dict[str, Any], target: float) -> float | None:
    """Cumulative seconds at the first epoch whose test accuracy reaches ``target`` (None: never)."""
    for acc, seconds in zip(run["test_acc"], run["cumulative_seconds"]):
        if acc >= target:
            return seconds
    return None


def time_ratio(run: dict[str, Any], scratch: dict[str, Any]) -> tuple[float | None, float | None, float]:
    """``(arm's time to the scratch best, ratio to scratch's time to its best, the target)``."""
    target = max(scratch["test_acc"])
    t_arm, t_scratch = time_to(run, target), time_to(scratch, target)
    return t_arm, (t_arm / t_scratch if t_arm is not None and t_scratch else None), target


def _schedule_text(optim: dict[str, Any]) -> str | None:
    """``"multistep x0.3 at 2/4/6/8, lr 0.05"`` or ``"cosine, lr 0.05"`` from a run's ``optim`` section."""
    if not optim:
        return None
    lr = f"lr {optim['lr']:g}"
    if optim.get("schedule") == "multistep":
        steps = "/".join(str(m) for m in optim.get("milestones") or [])
        return f"multistep x{optim['gamma']:g} at {steps}, {lr}"
    return f"{optim.get('schedule')}, {lr}"


def _epochs_text(run: dict[str, Any]) -> str:
    """Epochs trained, and whether the run stopped at its target (``train.stop_at_accuracy``)."""
    n = len(run["test_acc"])
    if (run.get("stop_at_accuracy") or {}).get("reached_epoch") is not None:
        return f"{n} (stopped at its target)"
    if (run.get("stop_on_plateau") or {}).get("stopped_epoch") is not None:
        return f"{n} (stopped: plateau)"
    return str(n)


def report(runs: dict[str, Any]) -> str:
    arms = by_arm(runs)
    lines = [
        "<!-- generated by experiments/pretrain_60k_report.py from docs/pretrain_fmnist_60k.json; do not edit -->",
        "",
    ]
    if not runs:
        return "\n".join(lines + ["No run recorded yet: the queue (docs/evidence.md) is running them."]) + "\n"
    lines += [
        "| arm | seed | best test accuracy (%) | epochs | pretraining (min) | reference best (%) | time to it (min) "
        "| ratio to the reference's time | paper |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        for seed, run in sorted(arms.get(arm, {}).items()):
            ref_arm = REFERENCE.get(arm, arm)
            ref = arms.get(ref_arm, {}).get(seed)
            best = f"{100 * max(run['test_acc']):.2f}"
            pre = f"{run['pretraining_seconds'] / 60:.1f}"
            epochs = _epochs_text(run)
            if ref is None:
                lines.append(f"| {arm} | {seed} | {best} | {epochs} | {pre} | - | - | - | - |")
                continue
            t_arm, ratio, target = time_ratio(run, ref)
            when = "never" if t_arm is None else f"{t_arm / 60:.1f}"
            ratio_text = "-" if ratio is None else f"{ratio:.3f}"
            paper = f"{PAPER_RATIO[arm]:.3f}" if arm in PAPER_RATIO else "-"
            lines.append(
                f"| {arm} | {seed} | {best} | {epochs} | {pre} | {100 * target:.2f} ({ref_arm}) "
                f"| {when} | {ratio_text} | {paper} |"
            )
    scratch = arms.get("scratch", {})
    if scratch:
        bests = [max(r["test_acc"]) for r in scratch.values()]
        floor = all(b >= SCRATCH_FLOOR for b in bests)
        mean, std = mean_std(bests)
        spread = f" ± {100 * std:.2f}" if std is not None else ""
        lines += [
            "",
            f"Static scratch SNN best: {100 * mean:.2f}{spread} % over {len(bests)} seed(s); floor "
            f"{100 * SCRATCH_FLOOR:.1f} % on every seed: {'met' if floor else 'NOT met'}.",
        ]
    return "\n".join(lines + sizing_lines(runs)) + "\n"


def sizing_lines(runs: dict[str, Any]) -> list[str]:
    """The runs that sized the network (every recorded run that is not an arm): width, T, test accuracy
    and training seconds after every epoch."""
    names = sorted(k for k in runs if (seed_key(k) or ("", 0))[0] not in ARMS)
    if not names:
        return []
    lines = [
        "",
        f"Sizing (runs that chose the network; the floor: the static scratch SNN >= {100 * SCRATCH_FLOOR:.1f} %):",
        "",
        "| run | width | T | schedule | test accuracy after each epoch (%) | best (%) | training s per epoch "
        "| load at end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        run = runs[name]
        accs = ", ".join(f"{100 * a:.2f}" for a in run["test_acc"])
        secs = ", ".join(f"{t:.0f}" for t in run.get("epoch_seconds") or []) or "-"
        load = " / ".join(f"{x:.2f}" for x in run.get("load_average_at_end") or []) or "-"
        lines.append(
            f"| {name} | {run.get('width', '-')} | {run.get('time_steps', '-')} | {run.get('schedule') or '-'} | {accs} | "
            f"{100 * max(run['test_acc']):.2f} | {secs} | {load} |"
        )
    return lines


def plot(runs: dict[str, Any], path: str) -> None:
    """Test accuracy vs cumulative training hours, one curve per arm (mean over seeds, min-max band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=False)
    panels = {"static": ("scratch", "pipe_s"), "events": ("scratch_events", "pipe_d_official", "pipe_d_full")}
    for ax, (title, names) in zip(axes, panels.items()):
        for arm in names:
            seeds = by_arm(runs).get(arm, {})
            if not seeds:
                continue
            n = min(len(r["test_acc"]) for r in seeds.values())
            hours = np.mean([np.asarray(r["cumulative_seconds"][:n]) / 3600 for r in seeds.values()], axis=0)
            acc = np.asarray([r["test_acc"][:n] for r in seeds.values()]) * 100
            ax.plot(hours, acc.mean(0), marker="o", label=f"{arm} ({len(seeds)} seed(s))")
            ax.fill_between(hours, acc.min(0), acc.max(0), alpha=0.2)
        ax.set_xlabel("cumulative training time (h), pretraining included")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{title}: time to accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> None:
    write_report_files(argv, "pretrain_60k_report.py", collect, report, JSON_PATH, REPORT_PATH, plot, PLOT_PATH)


if __name__ == "__main__":
    main(sys.argv)
