"""The IDSNN four-arm ablation on all 60,000 Fashion-MNIST images: per-run JSON, table and plot.

    python experiments/idsnn_60k_report.py /work/runs/idsnn_f60k [more roots ...] [KEY=WORKDIR ...]

A ``KEY=WORKDIR`` argument records one more finished student run (a controlled run launched with
``launch.py``, e.g. ``kd_control_alpha0.9_s2=runs/kd_a09``) under KEY; such keys are not
``<arm>_s<seed>``, so they stay out of the ablation's tables.

Reads ``<root>/seed<S>/<arm>/`` of ``python -m snnjax.methods.idsnn.ablation --config
configs/idsnn.py:fashion_mnist_60k`` (finished runs only: every configured epoch evaluated) and
``<root>/seed<S>/teacher/``, then
- adds one entry per run to ``docs/fmnist_reference_60k.json``: ``<arm>_s<seed>`` for the arms,
  ``ablation_teacher_s<seed>`` for the teachers (test accuracy per epoch, best/final, wall time, the
  load average seen, KD settings);
- writes ``docs/idsnn_60k_ablation.md`` (the ablation runner's table: best and final accuracy as
  mean +- std over seeds and per seed, first epoch at which each arm reaches the same seed's
  baseline final accuracy; the effects as per-seed differences of final accuracy; accuracy after
  each epoch) and ``docs/idsnn_60k_ablation.png``
  (mean line, min-max band over seeds).
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys

from snnjax.methods.idsnn import ablation
from snnjax.methods.idsnn.config import ARMS

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")
JSON_PATH = os.path.join(DOCS, "fmnist_reference_60k.json")


def epoch_records(workdir: str, stage: str) -> list[dict]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    rows = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
    rows = [r for r in rows if r.get("stage") == stage and r.get("kind") == "epoch" and "test_accuracy" in r]
    # A resumed run may log an epoch again: the last record of each epoch counts.
    by_epoch = {round(float(r.get("epoch", i + 1))): r for i, r in enumerate(rows)}
    return [by_epoch[e] for e in sorted(by_epoch)]


def run_entry(workdir: str, stage: str, epochs: int) -> dict | None:
    """The finished run's record, or None while it is still training."""
    rows = epoch_records(workdir, stage)
    if len(rows) < epochs:
        return None
    summaries = sorted(glob.glob(os.path.join(workdir, "*summary.json")))
    summary = json.load(open(summaries[-1])) if summaries else {}
    test = [round(float(r["test_accuracy"]), 4) for r in rows]
    return {
        "best_test_accuracy": max(test),
        "final_test_accuracy": test[-1],
        "epochs": len(rows),
        "wall_time_s": summary.get("wall_time_s"),
        "train_images_per_s": summary.get("train_images_per_s"),
        "test_accuracy_per_epoch": test,
        "train_accuracy_per_epoch": [round(float(r["train_accuracy"]), 4) for r in rows if "train_accuracy" in r],
        "kd": summary.get("kd"),
        "init": summary.get("init"),
    }


def keep_timings(old: dict | None, new: dict) -> dict:
    """``new``, with ``old``'s timings when ``new`` comes from a re-run that only restored and evaluated.

    Before the ablation runner read finished arms back (snnjax.methods.idsnn.ablation), running it again
    restored each finished arm, evaluated it and rewrote its summary.json with that re-run's timings
    (no training: ``train_images_per_s`` None). The accuracies are the same; the first record's timings
    are the training's.
    """
    same_run = old is not None and old.get("test_accuracy_per_epoch") == new["test_accuracy_per_epoch"]
    if same_run and new.get("train_images_per_s") is None and old.get("train_images_per_s") is not None:
        return {**new, "wall_time_s": old["wall_time_s"], "train_images_per_s": old["train_images_per_s"]}
    return new


def collect(roots: list[str], epochs: int, teacher_epochs: int) -> dict[str, dict]:
    """The finished runs under ``roots`` as JSON entries keyed ``<arm>_s<seed>`` / ``ablation_teacher_s<seed>``."""
    entries: dict[str, dict] = {}
    for root in roots:
        for seed_dir in sorted(glob.glob(os.path.join(root, "seed*"))):
            seed = int(os.path.basename(seed_dir)[len("seed") :])
            teacher = run_entry(os.path.join(seed_dir, "teacher"), "teacher", teacher_epochs)
            if teacher:
                entries[f"ablation_teacher_s{seed}"] = teacher
            for arm in ARMS:
                entry = run_entry(os.path.join(seed_dir, arm), "student", epochs)
                if entry is not None:
                    entries[f"{arm}_s{seed}"] = entry
    return entries


def ablation_key(key: str) -> tuple[str, int] | None:
    """``(arm, seed)`` for an ablation run's key ``<arm>_s<seed>``; None for any other key."""
    match = re.fullmatch(r"(?P<arm>\w+)_s(?P<seed>\d+)", key)
    return (match["arm"], int(match["seed"])) if match and match["arm"] in ARMS else None


def results_from_runs(runs: dict[str, dict]) -> dict[str, dict[int, dict]]:
    """``results[arm][seed] = {best, final, curve}`` (the ablation helpers' input) from the JSON entries.

    Only keys ``<arm>_s<seed>`` count: teachers, controlled runs and the earlier single runs stay out.
    """
    results: dict[str, dict[int, dict]] = {arm: {} for arm in ARMS}
    for key, entry in runs.items():
        arm_seed = ablation_key(key)
        if arm_seed is None:
            continue
        curve = [(i + 1, acc) for i, acc in enumerate(entry["test_accuracy_per_epoch"])]
        best, final = entry["best_test_accuracy"], entry["final_test_accuracy"]
        results[arm_seed[0]][arm_seed[1]] = {"best": best, "final": final, "curve": curve}
    return {arm: dict(sorted(r.items())) for arm, r in results.items() if r}


def report(runs: dict[str, dict], epochs: int) -> str:
    """docs/idsnn_60k_ablation.md: the ablation table, the paired effects and the per-epoch table."""
    results = results_from_runs(runs)
    md = ablation.report_markdown(results, epochs) + "\nTest accuracy after each epoch (mean, min-max over seeds):\n\n"
    return md + per_epoch_table(results, epochs)


def per_epoch_table(results: dict, epochs: int) -> str:
    head = "| arm | seeds | " + " | ".join(f"epoch {e}" for e in range(1, epochs + 1)) + " |"
    lines = [head, "|---|---|" + "---|" * epochs]
    for arm, per_seed in results.items():
        _, mean, low, high = ablation.curve_band(per_seed)  # the plot's line and band, as numbers
        cells = [f"{m:.4f} ({lo:.4f}-{hi:.4f})" for m, lo, hi in zip(mean, low, high)]
        lines.append(f"| {arm} | {','.join(map(str, sorted(per_seed)))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _usage_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(args: list[str]) -> None:
    from configs import idsnn as idsnn_config_file

    cfg = idsnn_config_file.get_config("fashion_mnist_60k")
    epochs, teacher_epochs = int(cfg.train.epochs), int(cfg.teacher.train.epochs)
    roots = [a for a in args if "=" not in a]
    controls = [a.split("=", 1) for a in args if "=" in a]
    for path in roots + [workdir for _, workdir in controls]:
        if not os.path.isdir(path):
            _usage_error(f"{path} is not a directory; give an ablation root or KEY=WORKDIR of a finished run")
    for key, _ in controls:
        if ablation_key(key) is not None:
            _usage_error(f"{key}: <arm>_s<seed> keys are the ablation's own; name the controlled run otherwise")
    entries = collect(roots, epochs, teacher_epochs)
    for key, workdir in controls:
        entry = run_entry(workdir, "student", epochs)
        if entry is None:
            _usage_error(f"{workdir} has no finished {epochs}-epoch student run (metrics.jsonl); wait for it to end")
        entries[key] = entry
    doc = json.load(open(JSON_PATH))
    doc["runs"].update({key: keep_timings(doc["runs"].get(key), entry) for key, entry in entries.items()})
    with open(JSON_PATH, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    # Tables and plot from the JSON, not from the roots: runs recorded earlier from other roots count too.
    md = report(doc["runs"], epochs)
    with open(os.path.join(DOCS, "idsnn_60k_ablation.md"), "w") as f:
        f.write(md)
    ablation.plot_curves(results_from_runs(doc["runs"]), os.path.join(DOCS, "idsnn_60k_ablation.png"))
    print(md)
    print(f"{len(entries)} runs recorded in {os.path.relpath(JSON_PATH)}: {sorted(entries)}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    main(sys.argv[1:])
