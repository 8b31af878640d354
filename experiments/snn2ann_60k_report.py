"""SNN2ANN vs BPTT on all 60,000 Fashion-MNIST images: per-run JSON, report, the paper's four ratios.

    python experiments/snn2ann_60k_report.py /work/evidence     # the ROOT of experiments/evidence_queue.sh

Reads ``ROOT/snn2ann/<arm>_s<seed>/`` (arms ``bptt_t8``, ``snn2ann_t5``, ``snn2ann_t8``; a run counts
once its ``summary.json`` is written), records one entry per run in ``docs/snn2ann_fmnist_60k.json``
(``runs.<arm>_s<seed>``: test accuracy and training seconds per epoch, the compiled train step's
memory, the process's peak RSS, spikes per test image, T, the recipe from ``run_config.json``, command,
commit, load) and renders
``docs/snn2ann_60k.md``: accuracy (mean ± sample std over seeds), the paired difference to BPTT with
its 95 % t interval, and each SNN2ANN arm's time, memory and spike ratios to the same seed's BPTT run
beside the paper's (0.625x time steps: comparable accuracy, 0.377x training time, 0.27x GPU memory,
0.33x spikes). Runs under ``ROOT/snn2ann/`` that are not arms of the comparison (``calib10k_*``: the
calibration of the preset's regularisation on 10,000 images; ``bptt_t8_officialreg_s0``: the 60k BPTT
run with the official regularisation) are recorded too, in a calibration table.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _records import (  # noqa: E402
    collect_runs,
    epoch_records,
    mean_std,
    queue_facts,
    read_json,
    seed_key,
    t_interval,
    write_report_files,
)

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
JSON_PATH = os.path.join(REPO, "docs", "snn2ann_fmnist_60k.json")
REPORT_PATH = os.path.join(REPO, "docs", "snn2ann_60k.md")
BASELINE = "bptt_t8"
ARMS = ("bptt_t8", "snn2ann_t5", "snn2ann_t8")
BPTT_FLOOR = 0.91
COMPARABLE_POINTS = 1.0  # "comparable accuracy": within 1 point of BPTT on the mean
PAPER = {"time": 0.377, "memory": 0.27, "spikes": 0.33}


def run_entry(workdir: str) -> dict[str, Any] | None:
    """The finished run's record (None while it runs)."""
    summary = read_json(os.path.join(workdir, "summary.json"))
    if summary is None:
        return None
    rows = epoch_records(workdir, summary["stage"])
    memory = summary.get("train_step_memory") or {}
    config = read_json(os.path.join(workdir, "run_config.json")) or {}
    return {
        "recipe": recipe(config),
        "test_acc": [round(float(r["test_accuracy"]), 4) for r in rows],
        "epoch_seconds": [round(float(r["epoch_train_seconds"]), 1) for r in rows if "epoch_train_seconds" in r],
        "compiled_memory_bytes": memory.get("total"),
        "peak_rss_bytes": summary.get("peak_rss_bytes"),
        "spikes_per_image": round(float(summary["spikes"]["spikes_per_example"]), 1),
        "time_steps": int(summary["time_steps"]),
        **queue_facts(workdir),
    }


def recipe(config: dict[str, Any]) -> dict[str, Any]:
    """What the calibration varied, from a run's ``run_config.json``: net, width, training images,
    epochs, conv dropout, weight decay and (SNN2ANN's SNN branch only) membrane dropout."""
    if not config:
        return {}
    model, data = config["model"], config["data"]
    bptt = model["name"].startswith("bptt")
    return {
        "net": model["name"],
        "width": model["width"],
        "train_images": data["train_subset"] or 60000,
        "epochs": config["train"]["epochs"],
        "dropout": model["dropout"],
        "weight_decay": config["optim"]["weight_decay"],
        "membrane_dropout": None if bptt else model["membrane_dropout"],  # the BPTT net has none
    }


def collect(root: str, runs: dict[str, Any]) -> dict[str, Any]:
    """``runs`` with every finished ``ROOT/snn2ann/<run>`` recorded."""
    return collect_runs(root, "snn2ann", runs, run_entry)


def by_arm(runs: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for key, run in runs.items():
        parsed = seed_key(key)
        if parsed and parsed[0] in ARMS:
            out.setdefault(parsed[0], {})[parsed[1]] = run
    return out


def ratios(run: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    """One arm's time, memory and spike ratios to the same seed's BPTT run.

    Time: each run's fastest epoch, the first left out when there are several (it may carry a
    resume's partial epoch). The fastest, not the mean: the 2-core machine is shared with other work
    for parts of a run, and that work only ever slows an epoch down, so each run's least-disturbed
    epoch is the closest to its speed on a quiet machine (every epoch's seconds are in the JSON)."""

    def quiet_seconds(r: dict[str, Any]) -> float | None:
        s = r["epoch_seconds"][1:] or r["epoch_seconds"]
        return min(s) if s else None

    t_run, t_base = quiet_seconds(run), quiet_seconds(base)
    mem_run, mem_base = run.get("compiled_memory_bytes"), base.get("compiled_memory_bytes")
    return {
        "time": t_run / t_base if t_run and t_base else None,
        "memory": mem_run / mem_base if mem_run and mem_base else None,
        "rss": run["peak_rss_bytes"] / base["peak_rss_bytes"]
        if run.get("peak_rss_bytes") and base.get("peak_rss_bytes")
        else None,
        "spikes": run["spikes_per_image"] / base["spikes_per_image"] if base.get("spikes_per_image") else None,
    }


def _fmt_ratio(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    mean, std = mean_std(got)
    return f"{mean:.3f}x" if std is None else f"{mean:.3f}x ± {std:.3f}"


def report(runs: dict[str, Any]) -> str:
    """The Markdown report (every number from ``runs``)."""
    arms = by_arm(runs)
    lines = [
        "<!-- generated by experiments/snn2ann_60k_report.py from docs/snn2ann_fmnist_60k.json; do not edit -->",
        "",
    ]
    if not runs:
        return "\n".join(lines + ["No run recorded yet: the queue (docs/evidence.md) is running them."]) + "\n"
    base = arms.get(BASELINE, {})
    lines += [
        "| arm | T | seeds | final test accuracy (%) | per seed | vs BPTT, points (95 % t interval) | "
        "time ratio (fastest epochs) | memory ratio (compiled) | peak RSS ratio | spike ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        seeds = arms.get(arm)
        if not seeds:
            continue
        finals = [seeds[s]["test_acc"][-1] for s in sorted(seeds)]
        mean, std = mean_std(finals)
        acc = f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")
        per_seed = ", ".join(f"{100 * a:.2f}" for a in finals)
        paired = [seeds[s]["test_acc"][-1] - base[s]["test_acc"][-1] for s in sorted(seeds) if s in base]
        diff, rat = "-", {"time": [], "memory": [], "rss": [], "spikes": []}
        if arm != BASELINE and paired:
            interval = t_interval(paired)
            diff = f"{100 * mean_std(paired)[0]:+.2f}" + (
                f" ({100 * interval[0]:+.2f} to {100 * interval[1]:+.2f})" if interval else ""
            )
            for s in sorted(seeds):
                if s in base:
                    for k, v in ratios(seeds[s], base[s]).items():
                        rat[k].append(v)
        t = seeds[min(seeds)]["time_steps"]
        cells = [_fmt_ratio(rat[k]) if arm != BASELINE else "1" for k in ("time", "memory", "rss", "spikes")]
        lines.append(f"| {arm} | {t} | {len(seeds)} | {acc} | {per_seed} | {diff} | " + " | ".join(cells) + " |")
    lines += ["", verdict_text(arms), ""]
    lines += calibration_lines(runs)
    return "\n".join(lines) + "\n"


def calibration_lines(runs: dict[str, Any]) -> list[str]:
    """The runs that chose the preset's recipe (every recorded run that is not an arm of the
    comparison): what each varied and its test accuracy after every epoch."""
    names = sorted(k for k in runs if (seed_key(k) or ("", 0))[0] not in ARMS)
    if not names:
        return []
    lines = [
        "Calibration (the runs that chose the preset's regularisation, seed 0; the comparison above "
        "runs without conv dropout and weight decay, the `noreg` recipe):",
        "",
        "| run | net | T | training images | epochs | conv dropout | weight decay | membrane dropout | "
        "test accuracy after each epoch (%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        run, r = runs[name], runs[name].get("recipe")
        if not r:
            continue
        dropout = "/".join(f"{x:g}" for x in r["dropout"])
        membrane = "-" if r["membrane_dropout"] is None else f"{r['membrane_dropout']:g}"
        accs = ", ".join(f"{100 * a:.2f}" for a in run["test_acc"])
        lines.append(
            f"| {name} | {r['net']} (width {r['width']}) | {run['time_steps']} | {r['train_images']:,} | "
            f"{r['epochs']} | {dropout} | {r['weight_decay']:g} | {membrane} | {accs} |"
        )
    return lines + [""]


def verdict_text(arms: dict[str, dict[int, dict[str, Any]]]) -> str:
    """The verdict, point by point against the paper's four numbers, at 0.625x T and at equal T."""
    base = arms.get(BASELINE, {})
    if not base:
        return "No BPTT run recorded yet."
    floor = all(r["test_acc"][-1] >= BPTT_FLOOR for r in base.values())
    out = [f"BPTT floor ({100 * BPTT_FLOOR:.1f} % on every seed): {'met' if floor else 'NOT met'}."]
    for arm in ("snn2ann_t5", "snn2ann_t8"):
        seeds = arms.get(arm, {})
        common = [s for s in sorted(seeds) if s in base]
        if not common:
            continue
        gap = 100 * mean_std([seeds[s]["test_acc"][-1] - base[s]["test_acc"][-1] for s in common])[0]
        rat = {k: [ratios(seeds[s], base[s])[k] for s in common] for k in PAPER}
        parts = [f"accuracy {gap:+.2f} points ({'comparable' if gap >= -COMPARABLE_POINTS else 'not comparable'})"]
        for k, paper in PAPER.items():
            got = [v for v in rat[k] if v is not None]
            parts.append(f"{k} {mean_std(got)[0]:.3f}x (paper {paper}x)" if got else f"{k} -")
        out.append(f"- {arm} vs {BASELINE} ({len(common)} seed(s)): " + "; ".join(parts) + ".")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    write_report_files(argv, "snn2ann_60k_report.py", collect, report, JSON_PATH, REPORT_PATH)


if __name__ == "__main__":
    main(sys.argv)
