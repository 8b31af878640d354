"""IDSNN ablation: baseline, init-only, KD-only and IDSNN (both) over several seeds.

    python -m snnjax.methods.idsnn.ablation --config configs/idsnn.py:digits --workdir runs/ablation --seeds 0,1,2
    python -m snnjax.methods.idsnn.ablation --config configs/idsnn.py:cifar100,decay10 --workdir runs/abl100 --seeds 445

For each seed the teacher is trained once (``WORKDIR/seed<S>/teacher``) and shared by the arms
that need it; each arm runs in ``WORKDIR/seed<S>/<arm>`` (re-running skips what is finished). The
result is ``WORKDIR/ablation.json``, ``WORKDIR/ablation.md`` and ``WORKDIR/ablation.png``: per arm the
best and final test accuracy (mean +- std over seeds), the first epoch at which the arm reached the
baseline's *final* test accuracy of the same seed (the paper's convergence-speed headline), and test
accuracy vs epoch (mean line, min-max band over seeds), and each effect (transplant, KD, both) as
per-seed differences of final accuracy between two arms (:func:`paired_effects`). Each arm's KD weight is the preset's
(:data:`snnjax.methods.idsnn.config.KD_ALPHA`: 0.5 for KD-only as the official ``train_kd.py``, 0.3
for IDSNN).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from snnjax import workdir_layout
from snnjax.methods.idsnn.config import ARMS, apply_arm

_CONFIG = config_flags.DEFINE_config_file("config", None, "An IDSNN config, e.g. configs/idsnn.py:digits")
_WORKDIR = flags.DEFINE_string("workdir", None, "Root directory of the ablation.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Comma-separated seeds.")
_ARMS = flags.DEFINE_list("arms", list(ARMS), f"Arms to run, from {list(ARMS)}.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Print the full traceback of an error (also: $SNNJAX_VERBOSE=1).")


def arm_config(config, arm: str, seed: int, teacher_dir: str | None):
    cfg = config.copy_and_resolve_references()
    cfg.seed = seed
    apply_arm(cfg, arm)  # switches and KD weight exactly as the arm's preset (configs/idsnn.py)
    cfg.teacher.checkpoint = teacher_dir or ""
    return cfg


def epoch_curve(workdir: str, stage: str = "student") -> list[tuple[int, float]]:
    """``[(epoch, test_accuracy), ...]`` of a stage from ``workdir/metrics.jsonl``."""
    from snnjax.train.metric_writer import read_metrics

    return [
        (r["epoch"], r["test_accuracy"])
        for r in read_metrics(workdir_layout.metrics(workdir))
        if r.get("stage") == stage and r.get("kind") == "epoch" and "test_accuracy" in r
    ]


def first_epoch_reaching(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first epoch whose test accuracy is >= ``target`` (None if never)."""
    return next((epoch for epoch, acc in curve if acc >= target), None)


def summarize(results: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """Aggregate ``results[arm][seed] = {best, final, curve}`` into the ablation table."""
    table = {}
    for arm, per_seed in results.items():
        bests = [r["best"] for r in per_seed.values()]
        finals = [r["final"] for r in per_seed.values()]
        reach = {}
        for seed, r in per_seed.items():
            baseline = results.get("baseline", {}).get(seed)
            if baseline is not None:
                reach[seed] = first_epoch_reaching(r["curve"], baseline["final"])
        table[arm] = {
            "best_test_accuracy_mean": float(np.mean(bests)),
            "best_test_accuracy_std": _sample_std(bests),
            "final_test_accuracy_mean": float(np.mean(finals)),
            "final_test_accuracy_std": _sample_std(finals),
            "best_test_accuracy_per_seed": {str(s): r["best"] for s, r in per_seed.items()},
            "final_test_accuracy_per_seed": {str(s): r["final"] for s, r in per_seed.items()},
            "epoch_reaching_baseline_final_per_seed": {str(s): e for s, e in reach.items()},
        }
    return table


def _sample_std(values: list[float]) -> float | None:
    """The sample standard deviation (ddof=1, as for the effects below); None for one seed."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _mean_std(mean: float, std: float | None) -> str:
    return f"{mean:.4f} +- {std:.4f}" if std is not None else f"{mean:.4f} (one seed)"


def to_markdown(table: dict[str, Any], epochs: int) -> str:
    lines = [
        "| arm | best test acc (mean +- sample std) | per seed | final test acc (mean +- sample std) | first epoch >= "
        f"baseline's final acc (of {epochs}) |",
        "|---|---|---|---|---|",
    ]
    for arm in ARMS:
        if arm not in table:
            continue
        row = table[arm]
        seeds = ", ".join(f"{v:.4f}" for v in row["best_test_accuracy_per_seed"].values())
        reach = ", ".join(
            "never" if e is None else str(e) for e in row["epoch_reaching_baseline_final_per_seed"].values()
        )
        lines.append(
            f"| {arm} | {_mean_std(row['best_test_accuracy_mean'], row['best_test_accuracy_std'])} | {seeds} | "
            f"{_mean_std(row['final_test_accuracy_mean'], row['final_test_accuracy_std'])} | {reach} |"
        )
    return "\n".join(lines) + "\n"


# (arm, reference, what the difference measures): the paper's claims are the first three rows.
EFFECTS = (
    ("init_only", "baseline", "transplant"),
    ("kd_only", "baseline", "KD"),
    ("idsnn", "init_only", "KD on top of the transplant"),
    ("idsnn", "kd_only", "transplant on top of KD"),
    ("idsnn", "baseline", "both"),
)


def paired_effects(results: dict[str, dict[int, dict[str, Any]]], metric: str = "final") -> list[dict[str, Any]]:
    """Per-seed differences ``arm - reference`` of ``metric`` (``"final"`` or ``"best"`` test accuracy).

    Pairing by seed removes what the arms share in a seed (the teacher, the data order), so an effect
    is judged against the spread of its own differences. Each row: ``arm``, ``reference``, ``effect``,
    ``per_seed`` ({seed: difference}), ``mean``, ``std`` (sample std, ddof=1; None for one seed) and
    ``positive`` (how many seeds have a difference > 0) and ``ci95`` ((low, high), the 95 % confidence
    interval of the mean from Student's t with n - 1 degrees of freedom, which is what a handful of
    seeds supports; None for one seed). Comparisons without a common seed are left out.
    """
    from scipy import stats  # imported here: the runner's start-up does not need it

    rows = []
    for arm, reference, effect in EFFECTS:
        seeds = sorted(set(results.get(arm, {})) & set(results.get(reference, {})))
        if not seeds:
            continue
        diffs = {s: float(results[arm][s][metric] - results[reference][s][metric]) for s in seeds}
        values = np.array(list(diffs.values()))
        n = len(values)
        std = float(values.std(ddof=1)) if n > 1 else None
        half = float(stats.t.ppf(0.975, n - 1)) * std / np.sqrt(n) if std is not None else None
        rows.append(
            {
                "arm": arm,
                "reference": reference,
                "effect": effect,
                "per_seed": {str(s): d for s, d in diffs.items()},
                "mean": float(values.mean()),
                "std": std,
                "positive": int((values > 0).sum()),
                "ci95": None if half is None else (float(values.mean()) - half, float(values.mean()) + half),
            }
        )
    return rows


def effects_markdown(rows: list[dict[str, Any]], metric: str = "final") -> str:
    """The :func:`paired_effects` rows as a table, in accuracy points (1 point = 0.01)."""
    lines = [
        f"| effect | {metric} test acc, arm - reference | per seed (points) | mean (points) | std over seeds "
        "(points) | 95 % CI of the mean, t (points) | seeds > 0 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_seed = ", ".join(f"{100 * d:+.2f}" for d in r["per_seed"].values())
        std = "-" if r["std"] is None else f"{100 * r['std']:.2f}"
        ci = "-" if r["ci95"] is None else f"{100 * r['ci95'][0]:+.2f} to {100 * r['ci95'][1]:+.2f}"
        lines.append(
            f"| {r['effect']} | {r['arm']} - {r['reference']} | {per_seed} | {100 * r['mean']:+.2f} | {std} | "
            f"{ci} | {r['positive']} of {len(r['per_seed'])} |"
        )
    return "\n".join(lines) + "\n"


def report_markdown(results: dict[str, dict[int, dict[str, Any]]], epochs: int) -> str:
    """The ablation table followed by the paired effects (:func:`paired_effects`) on final accuracy."""
    md = to_markdown(summarize(results), epochs)
    rows = paired_effects(results)
    if rows:
        md += "\nEffects, paired by seed:\n\n" + effects_markdown(rows)
    return md


def curve_band(per_seed: dict[int, dict[str, Any]]) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """One arm's test accuracy per epoch over seeds: (epochs, mean, min, max), each ``[E]``.

    Only the epochs every seed has reached count, so a seed still running cannot pull the mean.
    """
    curves = [dict(r["curve"]) for r in per_seed.values()]
    epochs = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    if not epochs:
        empty = np.zeros(0)
        return [], empty, empty, empty
    acc = np.array([[c[e] for e in epochs] for c in curves])
    return epochs, acc.mean(axis=0), acc.min(axis=0), acc.max(axis=0)


def plot_curves(results: dict[str, dict[int, dict[str, Any]]], path: str) -> None:
    """Test accuracy vs epoch per arm: the mean over seeds as a line, the min-max over seeds as a band."""
    from snnjax.plotting import use_writable_config_dir

    use_writable_config_dir()  # before matplotlib's import: an unwritable HOME then adds no warnings
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for arm, per_seed in results.items():
        epochs, mean, low, high = curve_band(per_seed)
        if not epochs:
            continue
        (line,) = ax.plot(epochs, mean, marker="o", markersize=3, label=f"{arm} ({len(per_seed)} seeds)")
        ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2)
    # Accuracy is measured after whole epochs only: fractional ticks would suggest points in between.
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _stop(message: str) -> None:
    """End on a bad input with one line on stderr (absl's UsageError would print every flag's help first)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def main(argv):
    del argv
    from snnjax import runtime

    runtime.use_eigen_convolutions()  # before JAX starts, as launch.py (snnjax/runtime.py)
    from snnjax import launch, user_errors

    verbose = _VERBOSE.value or user_errors.verbose_requested(sys.argv)
    root = os.path.abspath(_WORKDIR.value)
    existed = os.path.exists(root)
    state = launch.LaunchState()  # the root's lock: one ablation per root
    try:
        seeds, arms = _seeds_and_arms()
        mesh = launch.start_process(compilation_cache=launch.default_compilation_cache(), verbose=verbose)
        # As the launcher: --config.epochs_all sets every stage's epochs (teacher and arms) but those typed.
        config = launch.resolve_config_values(_CONFIG.value, launch.typed_config_keys(flags.FLAGS["config"]))
        _lock_root(root, state)
        _run_seeds(config, root, seeds, arms, mesh)
    except Exception as err:  # as the launcher: the error and its fix in two lines, the traceback in the log
        argv = sys.argv + (["--verbose"] if verbose and "--verbose" not in sys.argv else [])
        launch.exit_on_error(err, root, existed=existed, state=state, argv=argv)
    finally:
        state.release()


def _seeds_and_arms() -> tuple[list[int], list[str]]:
    """``--seeds`` and ``--arms`` checked, the baseline first (the convergence metric needs it)."""
    if not all(s.strip().isdigit() for s in _SEEDS.value):
        _stop(
            f"--seeds: {','.join(_SEEDS.value)} is not a list of seeds. Fix: non-negative integers, e.g. --seeds 0,1,2."
        )
    arms = list(_ARMS.value)
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        _stop(f"--arms: unknown arms {unknown}. Fix: choose from {list(ARMS)}.")
    if "baseline" in arms:
        arms = ["baseline"] + [a for a in arms if a != "baseline"]
    return [int(s) for s in _SEEDS.value], arms


def _lock_root(root: str, state) -> None:
    """Hold ``root`` for this ablation: a second one on it stops at once, naming the holder."""
    from snnjax.launch import take_lock
    from snnjax.train import workdir_lock

    os.makedirs(root, exist_ok=True)
    try:
        state.lock = take_lock(root)
    except workdir_lock.WorkdirLockedError as err:
        _stop(str(err))
    state.started = True


def _train_teacher(config, workdir: str, *, mesh) -> dict[str, Any]:
    """The teacher stage of ``config`` (a teacher config) in ``workdir``, as the IDSNN pipeline trains it
    (``checkpoints/teacher``); its summary also becomes the folder's ``summary.json``."""
    from snnjax import data as data_lib
    from snnjax import models
    from snnjax.train import run_outputs, stages

    splits = data_lib.load_from_config(config.data)
    result = stages.run_stage(
        config, workdir, "teacher", model=models.build(config.model, splits.num_classes), splits=splits, mesh=mesh
    )
    return run_outputs.finish_run(workdir, result.summary)


def _run_seeds(config, root: str, seeds: list[int], arms: list[str], mesh) -> None:
    """Every arm of every seed (the teacher first where an arm needs it), each through the launcher's
    sequence (:func:`snnjax.launch.run_in_workdir`: lock, finished check, run, mark finished); tables
    after each seed."""
    from snnjax import launch
    from snnjax.methods.idsnn import config as idsnn_config
    from snnjax.train import distributed, run_outputs

    results: dict[str, dict[int, dict[str, Any]]] = {arm: {} for arm in arms}
    for seed in seeds:
        teacher_dir = None
        if any(any(ARMS[a]) for a in arms):
            teacher_dir = os.path.join(root, f"seed{seed}", "teacher")
            tcfg = idsnn_config.teacher_config(arm_config(config, "idsnn", seed, None))
            os.makedirs(teacher_dir, exist_ok=True)
            launch.run_in_workdir(tcfg, teacher_dir, mesh=mesh, state=launch.LaunchState(), run_fn=_train_teacher)
        for arm in arms:
            wd = os.path.join(root, f"seed{seed}", arm)
            os.makedirs(wd, exist_ok=True)
            distributed.say(f"== seed {seed} arm {arm} -> {wd}")
            result = launch.run_in_workdir(
                arm_config(config, arm, seed, teacher_dir), wd, mesh=mesh, state=launch.LaunchState()
            )
            results[arm][seed] = {
                "best": result["best_test_accuracy"],
                "final": result["final_test_accuracy"],
                "curve": epoch_curve(wd),
            }
        table = summarize(results)
        run_outputs.write_json(
            os.path.join(root, "ablation.json"),
            {"config": config.to_dict(), "arms": table, "effects_final": paired_effects(results)},
        )
        run_outputs.write_text(os.path.join(root, "ablation.md"), report_markdown(results, int(config.train.epochs)))
        if distributed.is_primary():  # files and console from process 0 only, as the pipelines
            plot_curves(results, os.path.join(root, "ablation.png"))
    if distributed.is_primary():
        print(report_markdown(results, int(config.train.epochs)))


def cli() -> None:
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)


if __name__ == "__main__":
    cli()
