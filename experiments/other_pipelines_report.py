"""Tables of the Fashion-MNIST runs of hybrid + STDB, SNN2ANN and pretraining
(experiments/other_pipelines_fashion_mnist.sh).

    python experiments/other_pipelines_report.py runs/fmnist_other docs/

Reads ``<root>/<arm>_s<seed>/summary.json`` (and ``conversion.json`` for the hybrid runs), writes
``<out>/fmnist_other_pipelines_runs.json`` (the numbers per run) and prints markdown tables with
the per-seed values and mean +- sd (sample sd, n - 1) per arm.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from collections import defaultdict

import numpy as np


def _load(path: str) -> dict | None:
    return json.load(open(path)) if os.path.exists(path) else None


def run_record(workdir: str) -> dict | None:
    """The numbers of one finished run (None while it has no summary.json)."""
    summary = _load(os.path.join(workdir, "summary.json"))
    if summary is None:
        return None
    keys = ("best_test_accuracy", "final_test_accuracy", "best_epoch", "wall_time_s", "train_time_s")
    rec = {k: summary.get(k) for k in keys}
    if "final" in summary:  # SNN2ANN: both branches
        rec["final"] = summary["final"]
    if summary.get("transfer"):
        rec["transfer"] = summary["transfer"]
    if summary.get("pretrain"):
        rec["pretrain"] = {k: summary["pretrain"].get(k) for k in ("best_test_accuracy", "final_test_accuracy")}
    if "finetuned_accuracy" in summary:  # hybrid: after STDB, per evaluation T
        rec["finetuned_accuracy"] = summary["finetuned_accuracy"]
        rec["ann"] = {k: summary.get("ann", {}).get(k) for k in ("best_test_accuracy", "final_test_accuracy")}
    conversion = _load(os.path.join(workdir, "conversion.json"))
    if conversion is not None:
        rec["conversion_accuracy"] = conversion.get("accuracy")
    return rec


def collect(root: str) -> dict[str, dict[int, dict]]:
    """``{arm: {seed: record}}`` for every ``<root>/<arm>_s<seed>`` with a summary."""
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for workdir in sorted(glob.glob(os.path.join(root, "*_s[0-9]*"))):
        match = re.fullmatch(r"(.+)_s(\d+)", os.path.basename(workdir))
        rec = run_record(workdir) if match and os.path.isdir(workdir) else None
        if rec is not None:
            out[match.group(1)][int(match.group(2))] = rec
    return dict(out)


def mean_sd(values: list[float]) -> str:
    """``"0.6844"`` for one value, ``"0.6844 +- 0.0120"`` (sample sd) for several, in %."""
    v = np.asarray(values, float) * 100
    return f"{v[0]:.1f}" if len(v) == 1 else f"{v.mean():.1f} +- {v.std(ddof=1):.1f}"


def accuracy_table(runs: dict[str, dict[int, dict]], arms: list[str]) -> str:
    lines = ["| arm | seeds | best test acc (%) per seed | mean +- sd |", "| --- | --- | --- | --- |"]
    for arm in arms:
        if arm not in runs:
            continue
        seeds = sorted(runs[arm])
        accs = [runs[arm][s]["best_test_accuracy"] for s in seeds]
        per_seed = " / ".join(f"{100 * a:.1f}" for a in accs)
        lines.append(f"| {arm} | {','.join(map(str, seeds))} | {per_seed} | {mean_sd(accs)} |")
    return "\n".join(lines)


def hybrid_table(runs: dict[str, dict[int, dict]], arms: list[str]) -> str:
    """Converted and STDB-fine-tuned accuracy per evaluation T (first 2,000 test images)."""
    ts = sorted(
        {int(t) for arm in arms for rec in runs.get(arm, {}).values() for t in rec.get("conversion_accuracy") or {}}
    )
    lines = ["| arm | SNN | " + " | ".join(f"T={t}" for t in ts) + " |", "| --- | --- |" + " --- |" * len(ts)]
    for arm in arms:
        for key, label in (("conversion_accuracy", "converted"), ("finetuned_accuracy", "after STDB at T=16")):
            recs = [runs[arm][s] for s in sorted(runs.get(arm, {})) if runs[arm][s].get(key)]
            if recs:
                cells = [mean_sd([r[key][str(t)] for r in recs]) for t in ts]
                lines.append(f"| {arm} (seeds {len(recs)}) | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    root, out_dir = argv
    runs = collect(root)
    if not runs:
        raise SystemExit(f"no finished runs (<arm>_s<seed>/summary.json) under {root!r}: run the experiments first")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "fmnist_other_pipelines_runs.json")
    with open(path, "w") as f:
        json.dump(runs, f, indent=1, sort_keys=True)
    print(hybrid_table(runs, ["hyb_delay", "hyb_nodelay"]))
    print()
    print(accuracy_table(runs, ["s2a_md05", "s2a_md0", "s2a_bptt"]))
    print()
    print(accuracy_table(runs, ["ps", "scratch", "scratch8", "pd_off", "pd_full", "pd_scratch"]))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
