"""Does a PSN Spiking ResNet18 train, and with which initialisation? (issue 43; docs/psn_init_digits.md)

    python experiments/psn_init_digits.py ROOT          # runs what is missing under ROOT, then reports

Every arm is ``configs/baseline.py:digits`` (Spiking ResNet18, width 8, T = 4, the preset's 20 epochs of
SGD, no transplant, no KD) with one neuron or initialisation changed; a run with a ``summary.json`` is
done (re-running resumes the rest). Writes ``docs/psn_init_digits.json`` (per run: accuracy per epoch,
best, final, mean firing rate, seconds, command, commit) and ``docs/psn_init_digits.md``. About 75 s
per run on a 2-core CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import _records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = [
    "--config=configs/baseline.py:digits",
    "--config.model.width=8",
    "--config.train.progress_bar=False",
    "--config.train.tensorboard=False",
]
PSN = ["--config.model.neuron=psn"]
SJ = [*PSN, "--config.model.psn_init=spikingjelly"]
# arm -> (what it shows, its overrides)
ARMS: dict[str, tuple[str, list[str]]] = {
    "lif": ("LIF (decay 0.25, threshold 0.5, hard reset): the reference", []),
    "lif_decay0": ("LIF with decay 0: a neuron without memory, the control", ["--config.model.decay=0.0"]),
    "psn": ("PSN full, psn_init=lif (the default)", PSN),
    "psn_spikingjelly": ("PSN full, psn_init=spikingjelly (random W, b = -1, BN gamma 1)", SJ),
    "psn_masked": ("masked PSN (k = 2, lambda = 1), psn_init=lif", [*PSN, "--config.model.psn_variant=masked"]),
    "psn_sliding": ("sliding PSN (k = 2), psn_init=lif", [*PSN, "--config.model.psn_variant=sliding"]),
    "psn_tet": ("PSN full, psn_init=lif, TET loss", [*PSN, "--config.train.loss=tet"]),
    "sew_psn_spikingjelly": ("SEW ResNet18, PSN, psn_init=spikingjelly", [*SJ, "--config.model.name=sew_resnet18"]),
    "sew_psn": ("SEW ResNet18, PSN, psn_init=lif", [*PSN, "--config.model.name=sew_resnet18"]),
}
SEEDS = {"lif": (0, 1, 2), "psn": (0, 1, 2), "psn_spikingjelly": (0, 1, 2)}  # the others: seed 0
JSON_PATH = os.path.join(REPO, "docs", "psn_init_digits.json")
REPORT_PATH = os.path.join(REPO, "docs", "psn_init_digits.md")


def run_names() -> list[tuple[str, str, int]]:
    """``(run name, arm, seed)`` of every run, seed 0 of every arm first."""
    names = [(f"{arm}_s0", arm, 0) for arm in ARMS]
    names += [(f"{arm}_s{s}", arm, s) for arm, seeds in SEEDS.items() for s in seeds if s]
    return names


def command(arm: str, seed: int, workdir: str) -> list[str]:
    return [sys.executable, "launch.py", *BASE, *ARMS[arm][1], f"--config.seed={seed}", f"--workdir={workdir}"]


def run_missing(root: str) -> None:
    for name, arm, seed in run_names():
        workdir = os.path.join(root, "psn_init_digits", name)
        if os.path.exists(os.path.join(workdir, "summary.json")):
            continue
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "run.log"), "a") as log:
            print(f"run {name}", flush=True)
            subprocess.run(command(arm, seed, workdir), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)


def run_entry(workdir: str) -> dict[str, Any] | None:
    summary = _records.read_json(os.path.join(workdir, "summary.json"))
    if summary is None:
        return None
    name = os.path.basename(workdir)
    arm, seed = _records.seed_key(name)
    epochs = _records.epoch_records(workdir, "train")
    rates = list(((summary.get("spikes") or {}).get("firing_rates") or {}).values())
    return {
        "arm": arm,
        "seed": seed,
        "test_accuracy_per_epoch": [round(float(r["test_accuracy"]), 4) for r in epochs],
        "best_test_accuracy": summary["best_test_accuracy"],
        "final_test_accuracy": summary["final_test_accuracy"],
        "mean_firing_rate": sum(rates) / len(rates) if rates else None,  # over the neuron layers, test set
        "train_time_s": summary.get("train_time_s"),
        "command": "python " + " ".join(command(arm, seed, "RUN")[1:]),
        "commit": summary.get("environment", {}).get("git", {}).get("commit"),
    }


def report(runs: dict[str, Any]) -> str:
    lines = [
        "# Does a PSN Spiking ResNet18 train? (digits, width 8, T = 4, 20 epochs)",
        "",
        "Written by `python experiments/psn_init_digits.py ROOT`; per-run records in",
        "`docs/psn_init_digits.json`. Every arm is `configs/baseline.py:digits` (Spiking ResNet18, SGD lr 0.05,",
        "no transplant, no KD; 1,437 training and 360 test images) with one change. Test accuracy on all",
        "360 test images; mean and sample std over seeds where there are several.",
        "",
        "| arm | what | seeds | best test accuracy | final | mean firing rate |",
        "|---|---|---|---|---|---|",
    ]
    for arm, (what, _) in ARMS.items():
        rows = [r for r in runs.values() if r["arm"] == arm]
        if not rows:
            lines.append(f"| `{arm}` | {what} | - | (not run yet) | | |")
            continue
        best = _records.mean_std([100 * r["best_test_accuracy"] for r in rows])
        final = _records.mean_std([100 * r["final_test_accuracy"] for r in rows])
        rates = [r["mean_firing_rate"] for r in rows if r["mean_firing_rate"] is not None]
        rate = f"{100 * sum(rates) / len(rates):.1f} %" if rates else "-"
        lines.append(f"| `{arm}` | {what} | {len(rows)} | {_pct(best)} | {_pct(final)} | {rate} |")
    lines += ["", "Test accuracy per epoch (seed 0):", ""]
    for arm in ARMS:
        row = runs.get(f"{arm}_s0")
        if row:
            lines.append(f"- `{arm}`: " + " ".join(f"{100 * a:.0f}" for a in row["test_accuracy_per_epoch"]))
    return "\n".join(lines) + "\n"


def _pct(stats: tuple[float, float | None]) -> str:
    mean, std = stats
    return f"{mean:.1f} %" if std is None else f"{mean:.1f} ± {std:.1f} %"


def collect(root: str, old: dict[str, Any]) -> dict[str, Any]:
    return _records.collect_runs(root, "psn_init_digits", old, run_entry)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python experiments/psn_init_digits.py ROOT")
    run_missing(argv[1])
    _records.write_report_files(argv, "psn_init_digits.py", collect, report, JSON_PATH, REPORT_PATH)


if __name__ == "__main__":
    main(sys.argv)
