"""Tables and plots of the IDSNN Fashion-MNIST experiments (experiments/idsnn_fashion_mnist.sh).

    python experiments/idsnn_report.py runs/idsnn_fmnist [more roots ...] docs/

Reads every ``<root>/seed<S>/<run>/metrics.jsonl`` (the ablation's four arms and the controlled runs),
writes ``<out>/idsnn_fmnist_runs.md`` (best / final test accuracy, final train accuracy and loss per
run and seed, mean over seeds) and ``<out>/idsnn_fmnist_train_test.png`` (train and test accuracy per
epoch of baseline vs init-only: is the transplant's deficit one of optimisation or of generalisation?).
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections import defaultdict

import numpy as np

ORDER = (
    "baseline",
    "init_only",
    "kd_only",
    "idsnn",
    "init_only_rn18",
    "idsnn_rn18init_rn34kd",
    "init_only_warmup1",
    "teacher",
    "teacher_rn18",
)


def epoch_rows(path: str) -> list[dict]:
    """The per-epoch records (with test accuracy) of the run's last stage (student, or teacher/train)."""
    rows = [json.loads(line) for line in open(path) if '"test_accuracy"' in line]
    rows = [r for r in rows if r.get("kind") == "epoch"]
    if not rows:
        return []
    last_stage = rows[-1]["stage"]
    return [r for r in rows if r["stage"] == last_stage]


def collect(root: str) -> dict[str, dict[int, list[dict]]]:
    runs: dict[str, dict[int, list[dict]]] = defaultdict(dict)
    for path in glob.glob(os.path.join(root, "seed*", "*", "metrics.jsonl")):
        run = os.path.basename(os.path.dirname(path))
        seed = int(os.path.basename(os.path.dirname(os.path.dirname(path)))[len("seed") :])
        rows = epoch_rows(path)
        if rows:
            runs[run][seed] = rows
    return runs


def table(runs: dict[str, dict[int, list[dict]]]) -> str:
    lines = [
        "| run | seeds | best test acc (mean) | final test acc (mean) | per seed (best / final) | "
        "final train acc (mean) | final train loss (mean) | epochs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in sorted(runs, key=lambda r: (ORDER.index(r) if r in ORDER else len(ORDER), r)):
        per_seed = runs[run]
        best = {s: max(r["test_accuracy"] for r in rows) for s, rows in per_seed.items()}
        final = {s: rows[-1]["test_accuracy"] for s, rows in per_seed.items()}
        train_acc = [rows[-1]["train_accuracy"] for rows in per_seed.values()]
        train_loss = [rows[-1]["train_loss"] for rows in per_seed.values()]
        seeds = sorted(per_seed)
        detail = ", ".join(f"s{s}: {best[s]:.4f} / {final[s]:.4f}" for s in seeds)
        epochs = sorted({rows[-1]["epoch"] for rows in per_seed.values()})
        lines.append(
            f"| {run} | {','.join(map(str, seeds))} | {np.mean(list(best.values())):.4f} | "
            f"{np.mean(list(final.values())):.4f} | {detail} | {np.mean(train_acc):.4f} | "
            f"{np.mean(train_loss):.4f} | {','.join(map(str, epochs))} |"
        )
    return "\n".join(lines) + "\n"


def plot_train_test(runs: dict[str, dict[int, list[dict]]], path: str, arms=("baseline", "init_only")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
    for arm in arms:
        for seed, rows in sorted(runs.get(arm, {}).items()):
            epochs = [r["epoch"] for r in rows]
            style = "-" if seed == 0 else "--"
            axes[0].plot(
                epochs,
                [r["train_accuracy"] for r in rows],
                style,
                marker="o",
                markersize=3,
                label=f"{arm} seed {seed}",
                color="C0" if arm == arms[0] else "C1",
            )
            axes[1].plot(
                epochs,
                [r["test_accuracy"] for r in rows],
                style,
                marker="o",
                markersize=3,
                label=f"{arm} seed {seed}",
                color="C0" if arm == arms[0] else "C1",
            )
    for ax, title in zip(axes, ("train accuracy (running, augmented)", "test accuracy")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(roots: list[str], out: str) -> None:
    runs: dict[str, dict[int, list[dict]]] = defaultdict(dict)
    for root in roots:
        for run, per_seed in collect(root).items():
            runs[run].update(per_seed)
    os.makedirs(out, exist_ok=True)
    md = table(runs)
    with open(os.path.join(out, "idsnn_fmnist_runs.md"), "w") as f:
        f.write(md)
    plot_train_test(runs, os.path.join(out, "idsnn_fmnist_train_test.png"))
    print(md)


if __name__ == "__main__":
    main(sys.argv[1:-1], sys.argv[-1])
