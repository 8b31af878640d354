"""Hybrid conversion + STDB on all 60,000 Fashion-MNIST images: per-run JSON, report and plot.

    python experiments/hybrid_60k_report.py /work/evidence        # the ROOT of experiments/evidence_queue.sh

Reads ``ROOT/hybrid/<arch>_s<seed>/`` (``arch``: vgg | resnet20; a run counts once its
``summary.json`` is written) and
- records one entry per run in ``docs/hybrid_fmnist_60k.json`` (``runs.<arch>_s<seed>``): the ANN's
  test accuracy, the converted SNN's accuracy and spikes per image at every T of the sweep, the
  fine-tuning T (``t_finetune``) and, after every STDB epoch, the fine-tuned SNN's test accuracy and
  spikes per image at that T, the seconds of each stage, the command and the commit;
- renders ``docs/hybrid_60k.md`` (the tables and the verdict, included by docs/hybrid_stdb.md) and
  ``docs/hybrid_60k.png`` (accuracy vs T of the conversion, the fine-tuned points on it).

The verdict follows the issue's test of the paper's claim, per architecture: on every seed the
fine-tuned SNN at T_s (its last epoch) (a) beats the converted SNN at T_s by >= 2 points (and STDB's
own start, when ``conversion.finetune_scaling_factor`` gave it other thresholds) and (b) is
within 1 point of, or above, the converted SNN at 8 x T_s. Spikes are compared at matched accuracy:
the fine-tuned SNN at T_s against the converted SNN at the first T of the sweep that reaches the
fine-tuned accuracy.

A lever run ``<arch>_<lever>_s<seed>`` (``hybrid_levers`` in experiments/evidence_queue.sh) changes one
setting of its base run ``<arch>_s<seed>`` (same ANN, STDB start and schedule) and gets a table of its
own, beside the base run, against the base run's converted SNN at 8 x T_s.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _records import collect_runs, epoch_records, mean_std, queue_facts, read_json, write_report_files  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DOCS = os.path.join(REPO, "docs")
JSON_PATH = os.path.join(DOCS, "hybrid_fmnist_60k.json")
REPORT_PATH = os.path.join(DOCS, "hybrid_60k.md")
PLOT_PATH = os.path.join(DOCS, "hybrid_60k.png")
ARCHS = ("vgg", "resnet20")
ANN_FLOOR = {"vgg": 0.92, "resnet20": 0.91}
GAIN_POINTS = 2.0  # (a): the fine-tuned SNN beats the converted one at T_s by at least this
LONG_T_FACTOR = 8  # (b): ... and is within TOLERANCE_POINTS of the converted SNN at 8 x T_s
TOLERANCE_POINTS = 1.0


def run_entry(workdir: str) -> dict[str, Any] | None:
    """The finished run's record (None while it runs)."""
    summary = read_json(os.path.join(workdir, "summary.json"))
    conversion = read_json(os.path.join(workdir, "conversion.json"))
    if summary is None or conversion is None:
        return None
    ann = read_json(os.path.join(workdir, "ann_summary.json")) or {}
    model = (read_json(os.path.join(workdir, "run_config.json")) or {}).get("model", {})
    facts = queue_facts(workdir)
    stdb = epoch_records(workdir, "stdb")
    return {
        # A lever run restores its base run's ANN (``ann.checkpoint``): no ANN record of its own, maybe.
        "ann_test_acc": _rounded(summary.get("ann", {}).get("final_test_accuracy")),
        "ann_best_test_acc": _rounded(summary.get("ann", {}).get("best_test_accuracy")),
        "ann_epochs": summary.get("ann", {}).get("epochs"),
        "converted": {t: round(float(a), 4) for t, a in conversion["accuracy"].items()},
        "converted_spikes": {t: round(float(s), 1) for t, s in conversion.get("spikes", {}).items()},
        "t_finetune": int(summary["time_steps"]),
        "surrogate": model.get("surrogate"),
        "snn_dropout": model.get("dropout"),
        "finetuned": [round(float(r["test_accuracy"]), 4) for r in stdb],
        "finetuned_spikes": [round(float(r["test_spikes_per_image"]), 1) for r in stdb if "test_spikes_per_image" in r],
        "thresholds": conversion.get("scaled_thresholds"),
        # Where STDB started when its thresholds differ from the converted SNN's (finetune_scaling_factor).
        "finetune_start": _start(summary.get("finetune_start")),
        "seconds": {
            "ann": ann.get("wall_time_s"),
            "balance": conversion.get("balance_seconds"),
            "sweep": conversion.get("sweep_seconds"),
            "stdb": summary.get("wall_time_s"),
        },
        **facts,
        "commit": facts["commit"] or (summary.get("environment", {}).get("git") or {}).get("commit"),
    }


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def collect(root: str, runs: dict[str, Any]) -> dict[str, Any]:
    """``runs`` with every finished ``ROOT/hybrid/<run>`` recorded."""
    return collect_runs(root, "hybrid", runs, run_entry)


def by_arch(runs: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """``{arch: {seed: run}}`` for the keys ``<arch>_s<seed>``."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for key, run in runs.items():
        arch, _, seed = key.rpartition("_s")
        if arch in ARCHS and seed.isdigit():
            out.setdefault(arch, {})[int(seed)] = run
    return out


def levers(runs: dict[str, Any]) -> list[tuple[str, str, int, dict[str, Any], dict[str, Any]]]:
    """``(arch, lever, seed, run, base)`` for every key ``<arch>_<lever>_s<seed>`` whose base run
    ``<arch>_s<seed>`` is recorded: one setting changed from the same ANN, start and schedule."""
    out = []
    for key, run in sorted(runs.items()):
        stem, _, seed = key.rpartition("_s")
        arch, _, lever = stem.partition("_")
        base = runs.get(f"{arch}_s{seed}")
        if arch in ARCHS and lever and seed.isdigit() and base is not None:
            out.append((arch, lever, int(seed), run, base))
    return out


def lever_report(runs: dict[str, Any]) -> list[str]:
    """The levers' table: STDB per epoch at T_s beside its base run, both against the base run's
    converted SNN at 8 x T_s (a lever run sweeps only T_s: its ANN is the base run's, restored)."""
    rows = levers(runs)
    if not rows:
        return []
    epochs = max(len(r["finetuned"]) for _, _, _, r, b in rows for r in (r, b))
    lines = [
        "### Levers on claim (b): one setting changed, the same ANN, STDB start and schedule",
        "",
        "| run | surrogate | SNN dropout | STDB start at T_s | "
        + " | ".join(f"epoch {i + 1}" for i in range(epochs))
        + f" | converted at {LONG_T_FACTOR} x T_s | last vs it, points |",
        "|---|---|---|---|" + "---|" * (epochs + 2),
    ]
    for arch, lever, seed, run, base in rows:
        long_t = str(LONG_T_FACTOR * base["t_finetune"])
        for name, r in ((f"{arch}_s{seed}", base), (f"{arch}_{lever}_s{seed}", run)):
            start = r.get("finetune_start")
            accs = [_pct(a) for a in r["finetuned"]] + ["-"] * (epochs - len(r["finetuned"]))
            lines.append(
                f"| {name} | {r.get('surrogate') or '-'} | {_dropout(r.get('snn_dropout'))} "
                f"| {_pct(start['accuracy']) if start else '-'} | "
                + " | ".join(accs)
                + f" | {_pct(base['converted'][long_t])} (T={long_t}) | "
                f"{100 * (r['finetuned'][-1] - base['converted'][long_t]):+.2f} |"
            )
    return lines + [""]


def _dropout(value: Any) -> str:
    if value is None:
        return "-"
    return "/".join(f"{v:g}" for v in value) if isinstance(value, (list, tuple)) else f"{value:g}"


def matched_converted_t(run: dict[str, Any]) -> str | None:
    """The first T of the sweep at which the converted SNN reaches the fine-tuned SNN's final accuracy."""
    target = run["finetuned"][-1]
    for t in sorted(run["converted"], key=int):
        if run["converted"][t] >= target:
            return t
    return None


def _start(start: dict[str, Any] | None) -> dict[str, Any] | None:
    if not start:
        return None
    return {
        "scaling_factor": float(start["scaling_factor"]),
        "accuracy": round(float(start["accuracy"]), 4),
        "spikes": round(float(start["spikes"]), 1),
    }


def start_accuracy(run: dict[str, Any]) -> float:
    """What fine-tuning has to beat at T_s: the better of the converted SNN there and STDB's own start
    (when it started from other thresholds), so a better start never counts as STDB's gain."""
    converted = run["converted"][str(run["t_finetune"])]
    start = run.get("finetune_start")
    return max(converted, start["accuracy"]) if start else converted


def verdict(run: dict[str, Any]) -> dict[str, Any]:
    """The two parts of the claim for one run, in points, and the spike comparison at matched accuracy."""
    long_t = str(LONG_T_FACTOR * run["t_finetune"])
    final = run["finetuned"][-1]
    gain = 100 * (final - start_accuracy(run))
    behind_long = 100 * (final - run["converted"][long_t]) if long_t in run["converted"] else None
    matched = matched_converted_t(run)
    out = {
        "gain_points": gain,
        "a": gain >= GAIN_POINTS,
        "vs_long_points": behind_long,
        "b": behind_long is not None and behind_long >= -TOLERANCE_POINTS,
        "matched_t": matched,
        "ann_floor": run["ann_test_acc"] >= ANN_FLOOR.get(run.get("arch", ""), 0.0),
    }
    if run["finetuned_spikes"] and matched is not None and matched in run["converted_spikes"]:
        out["spike_ratio"] = run["finetuned_spikes"][-1] / run["converted_spikes"][matched]
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _mean_std(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{100 * mean:.2f}" if std is None else f"{100 * mean:.2f} ± {100 * std:.2f}"


def report(runs: dict[str, Any]) -> str:
    """The Markdown report of the recorded runs (every number from ``runs``)."""
    lines = [
        "<!-- generated by experiments/hybrid_60k_report.py from docs/hybrid_fmnist_60k.json; do not edit -->",
        "",
    ]
    if not runs:
        return "\n".join(lines + ["No run recorded yet: the queue (docs/evidence.md) is running them."]) + "\n"
    for arch, seeds in sorted(by_arch(runs).items(), key=lambda kv: ARCHS.index(kv[0])):
        first = seeds[min(seeds)]
        sweep = sorted(first["converted"], key=int)
        ts = first["t_finetune"]
        lines += [
            f"### {arch}: {len(seeds)} seed(s), fine-tuning at T_s = {ts}",
            "",
            "Converted SNN, test accuracy (%) on all 10,000 test images, per T (spikes per image below):",
            "",
            "| seed | ANN | " + " | ".join(f"T={t}" for t in sweep) + " |",
            "|---|---|" + "---|" * len(sweep),
        ]
        for seed, run in sorted(seeds.items()):
            lines.append(
                f"| {seed} | {_pct(run['ann_test_acc'])} | "
                + " | ".join(_pct(run["converted"][t]) for t in sweep)
                + " |"
            )
        for seed, run in sorted(seeds.items()):
            if run["converted_spikes"]:
                spikes = " | ".join(f"{run['converted_spikes'][t]:,.0f}" for t in sweep)
                lines.append(f"| {seed} (spikes) | - | {spikes} |")
        lines += [
            "",
            f"STDB fine-tuning at T = {ts}: test accuracy (%) after each epoch (spikes per image at the last):",
            "",
            "| seed | converted at T_s | STDB start at T_s | "
            + " | ".join(f"epoch {i + 1}" for i in range(len(first["finetuned"])))
            + " | spikes (last) |",
            "|---|---|---|" + "---|" * (len(first["finetuned"]) + 1),
        ]
        for seed, run in sorted(seeds.items()):
            spikes = f"{run['finetuned_spikes'][-1]:,.0f}" if run["finetuned_spikes"] else "-"
            start = run.get("finetune_start")
            start_text = f"{_pct(start['accuracy'])} (x{start['scaling_factor']:g})" if start else "same"
            lines.append(
                f"| {seed} | {_pct(run['converted'][str(ts)])} | {start_text} | "
                + " | ".join(_pct(a) for a in run["finetuned"])
                + f" | {spikes} |"
            )
        lines += [
            "",
            f"Verdict (last epoch; (a) gain over the better of the converted SNN and STDB's start at T_s >= "
            f"{GAIN_POINTS:g} points; (b) within "
            f"{TOLERANCE_POINTS:g} point of the converted SNN at {LONG_T_FACTOR} x T_s = {LONG_T_FACTOR * ts}):",
            "",
            "| seed | ANN floor | (a) gain, points | (b) vs T="
            + f"{LONG_T_FACTOR * ts}, points | converted T reaching it | spikes fine-tuned / converted there |",
            "|---|---|---|---|---|---|",
        ]
        for seed, run in sorted(seeds.items()):
            v = verdict({**run, "arch": arch})
            long_text = (
                "-" if v["vs_long_points"] is None else f"{v['vs_long_points']:+.2f} ({'yes' if v['b'] else 'no'})"
            )
            ratio = f"{v['spike_ratio']:.2f}x" if "spike_ratio" in v else "-"
            lines.append(
                f"| {seed} | {'yes' if v['ann_floor'] else 'NO'} ({_pct(run['ann_test_acc'])} vs {_pct(ANN_FLOOR[arch])}) "
                f"| {v['gain_points']:+.2f} ({'yes' if v['a'] else 'no'}) | {long_text} | "
                f"{v['matched_t'] or 'never'} | {ratio} |"
            )
        finals = [run["finetuned"][-1] for run in seeds.values()]
        lines += ["", f"Fine-tuned at T_s, last epoch, mean ± sample std over seeds: {_mean_std(finals)} %.", ""]
    return "\n".join(lines + lever_report(runs)) + "\n"


def plot(runs: dict[str, Any], path: str) -> None:
    """Accuracy vs T (log axis) of the converted SNN per seed, with the fine-tuned SNN's last epoch at T_s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = by_arch(runs)
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(6 * max(len(groups), 1), 4), squeeze=False)
    for ax, (arch, seeds) in zip(axes[0], sorted(groups.items(), key=lambda kv: ARCHS.index(kv[0]))):
        for seed, run in sorted(seeds.items()):
            ts = sorted(run["converted"], key=int)
            line = ax.plot(
                [int(t) for t in ts],
                [100 * run["converted"][t] for t in ts],
                marker="o",
                label=f"converted, seed {seed}",
            )
            ax.scatter(
                [run["t_finetune"]],
                [100 * run["finetuned"][-1]],
                marker="*",
                s=160,
                color=line[0].get_color(),
                label=f"STDB-fine-tuned, seed {seed}",
                zorder=3,
            )
            ax.axhline(100 * run["ann_test_acc"], color=line[0].get_color(), linestyle=":", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("time steps T")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{arch}: conversion vs STDB at T_s (dotted: ANN)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> None:
    write_report_files(argv, "hybrid_60k_report.py", collect, report, JSON_PATH, REPORT_PATH, plot, PLOT_PATH)


if __name__ == "__main__":
    main(sys.argv)
