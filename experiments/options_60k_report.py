"""Training options on IDSNN, all 60,000 Fashion-MNIST images: LIF vs PSN + TET vs SLTT; per-run JSON, report, plot.

    python experiments/options_60k_report.py /work/evidence     # the ROOT of experiments/evidence_queue.sh

Reads ``ROOT/options/<arm>_s<seed>/`` (issue 43; arms ``lif``: the default LIF neurons with BPTT, which
also trains the ResNet34 teacher as its stage 1; ``psn_tet``: PSN neurons with the TET loss; ``sltt``:
SLTT through time; the last two restore the teacher of the same seed's ``lif`` run). A run is finished
once its ``summary.json`` is written (a run of the queue: once the queue has written its ``queue_run.json``); a run still training is recorded too, with its epochs
so far and ``"finished": false``, and a later call replaces it (a finished record is never replaced by
an unfinished one). Records one entry per run in ``docs/training_options_fmnist_60k.json``
(``runs.<arm>_s<seed>``, the runs recorded earlier kept): the student's best and final test accuracy,
its test accuracy and training seconds after every epoch, the compiled train step's memory, spikes per
test image, the teacher's accuracy (and the workdir it was restored from), the command and commit(s).
Renders ``docs/training_options_60k.md`` (final / best accuracy, mean ± sample std over seeds, seconds
per epoch, time and memory ratios to the same seed's ``lif`` run; test accuracy after every epoch per
run; the teachers and commits) and ``docs/training_options_60k.png`` (test accuracy per epoch, one line
per arm: the mean over the finished seeds, min-max band; ``snnjax.methods.idsnn.ablation.plot_curves``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _records import collect_runs, epoch_records, mean_std, queue_facts, read_json, seed_key, write_report_files  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
JSON_PATH = os.path.join(REPO, "docs", "training_options_fmnist_60k.json")
REPORT_PATH = os.path.join(REPO, "docs", "training_options_60k.md")
PLOT_PATH = os.path.join(REPO, "docs", "training_options_60k.png")
EXPERIMENT = "options"
BASELINE = "lif"
ARMS = ("lif", "psn_tet", "sltt")
ARM_TEXT = {"lif": "LIF, BPTT", "psn_tet": "PSN + TET loss", "sltt": "LIF, SLTT"}


def _round(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def teacher_entry(workdir: str, summary: dict[str, Any] | None) -> dict[str, Any]:
    """The teacher's best and final test accuracy; a teacher restored from another run (the same seed's
    ``lif`` run) has them in that run's ``teacher_summary.json``, its own summary only the checkpoint's."""
    teacher = (summary or {}).get("teacher") or read_json(os.path.join(workdir, "teacher_summary.json")) or {}
    source = teacher.get("restored_from")
    if source:
        teacher = {**teacher, **(read_json(os.path.join(source, "teacher_summary.json")) or {})}
    return {
        "best_test_accuracy": _round(teacher.get("best_test_accuracy"), 4),
        "final_test_accuracy": _round(teacher.get("final_test_accuracy"), 4),
        "restored_from": source,
    }


def queue_commits(workdir: str) -> list[str] | None:
    """The commits of the queues that ran a part of a run (``queue_commits.txt``; for an unfinished run,
    whose ``queue_run.json`` is not written yet)."""
    path = os.path.join(workdir, "queue_commits.txt")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return list(dict.fromkeys(line.strip() for line in f if line.strip())) or None


def run_entry(workdir: str) -> dict[str, Any] | None:
    """The run's record: finished once the launcher wrote ``summary.json`` (a run of the queue: once the
    queue wrote ``queue_run.json``); an unfinished run with at least one evaluated epoch (teacher or
    student) is recorded with its epochs so far; None before that."""
    queued = os.path.exists(os.path.join(workdir, "queue_commits.txt"))
    finished = os.path.exists(os.path.join(workdir, "queue_run.json" if queued else "summary.json"))
    rows = epoch_records(workdir, "student")
    teacher_rows = epoch_records(workdir, "teacher")
    if not (finished or rows or teacher_rows):
        return None
    summary = read_json(os.path.join(workdir, "summary.json")) if finished else None
    summary = summary or {}
    test = [round(float(r["test_accuracy"]), 4) for r in rows]
    spikes = (summary.get("spikes") or {}).get("spikes_per_example")
    facts = queue_facts(workdir)
    return {
        "finished": finished,
        "epochs": len(rows),
        "teacher_epochs": len(teacher_rows),
        "best_test_accuracy": _round(summary.get("best_test_accuracy", max(test) if test else None), 4),
        "final_test_accuracy": _round(summary.get("final_test_accuracy", test[-1] if test else None), 4),
        "test_acc": test,
        "epoch_seconds": [round(float(r["epoch_train_seconds"]), 1) for r in rows if "epoch_train_seconds" in r],
        "train_step_memory": summary.get("train_step_memory"),
        "spikes_per_image": _round(spikes, 1),
        "teacher": teacher_entry(workdir, summary),
        **facts,
        "commits": facts["commits"] or queue_commits(workdir),
    }


def collect(root: str, runs: dict[str, Any]) -> dict[str, Any]:
    """``runs`` with every run in ``ROOT/options`` (re-)recorded; a finished record recorded earlier stays
    when the workdir now holds an unfinished one (a run started again in a cleared workdir)."""
    fresh = collect_runs(root, EXPERIMENT, {}, run_entry)
    out = dict(runs)
    for key, entry in fresh.items():
        if not entry["finished"] and (runs.get(key) or {}).get("finished"):
            continue
        out[key] = entry
    return out


def by_arm(runs: dict[str, Any], finished_only: bool = False) -> dict[str, dict[int, dict[str, Any]]]:
    """``{arm: {seed: run}}`` for the keys ``<arm>_s<seed>`` of the known arms, in the order of ARMS."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for key, run in runs.items():
        parsed = seed_key(key)
        if parsed and parsed[0] in ARMS and (run["finished"] or not finished_only):
            out.setdefault(parsed[0], {})[parsed[1]] = run
    return {arm: dict(sorted(out[arm].items())) for arm in ARMS if arm in out}


def seconds_per_epoch(run: dict[str, Any]) -> float | None:
    """Mean training seconds per epoch, the first epoch left out when there are several (it may carry a
    resume's partial epoch)."""
    s = run["epoch_seconds"][1:] or run["epoch_seconds"]
    return sum(s) / len(s) if s else None


def compiled_memory(run: dict[str, Any]) -> int | None:
    return (run.get("train_step_memory") or {}).get("total")


def ratios(run: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    """One run's seconds-per-epoch and compiled-step-memory ratios to the same seed's ``lif`` run."""
    t_run, t_base = seconds_per_epoch(run), seconds_per_epoch(base)
    m_run, m_base = compiled_memory(run), compiled_memory(base)
    return {
        "time": t_run / t_base if t_run and t_base else None,
        "memory": m_run / m_base if m_run and m_base else None,
    }


def _pct(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def _mean_std_text(values: list[float | None], fmt: str, suffix: str = "") -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    mean, std = mean_std(got)
    return f"{mean:{fmt}}{suffix}" + (f" ± {std:{fmt}}" if std is not None else "")


def report(runs: dict[str, Any]) -> str:
    """The Markdown report (every number from ``runs``)."""
    lines = [
        "<!-- generated by experiments/options_60k_report.py from docs/training_options_fmnist_60k.json; "
        "do not edit -->",
        "",
    ]
    arms = by_arm(runs)
    if not arms:
        return "\n".join(lines + ["No run recorded yet: the queue (docs/evidence.md) is running them."]) + "\n"
    done = by_arm(runs, finished_only=True)
    base = done.get(BASELINE, {})
    lines += [
        "IDSNN on all 60,000 Fashion-MNIST images (`configs/idsnn.py:fashion_mnist_60k`: ResNet34 teacher, "
        "transplant, Spiking ResNet18 student with KD), one arm per training option. Finished runs only; "
        "accuracy on all 10,000 test images, mean ± sample std over seeds. Seconds: the student's training "
        "seconds per epoch (the first epoch left out when there are several); ratios to the same seed's "
        f"`{BASELINE}` run, mean ± std over seeds; memory: the compiled train step's. The seconds are "
        "wall-clock seconds on a 2-core machine that other work shared for part of each run (each epoch's "
        "seconds and the load at the run's end are in the runs table below), so the time ratio is not a "
        "speed comparison of the options: that is `benchmarks/training_options.py`, measured side by side "
        "(benchmarks/RESULTS.md). The memory ratio does not depend on the load.",
        "",
        "| arm | options | seed(s) | final test accuracy (%) | per seed | best test accuracy (%) | per seed "
        f"| s / epoch | time ratio vs {BASELINE} | memory ratio vs {BASELINE} | spikes / image |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, seeds in done.items():
        finals = [r["final_test_accuracy"] for r in seeds.values()]
        bests = [r["best_test_accuracy"] for r in seeds.values()]
        paired = [ratios(seeds[s], base[s]) for s in seeds if s in base]
        if arm == BASELINE:
            time_cell = memory_cell = "1"
        else:
            time_cell = _mean_std_text([r["time"] for r in paired], ".3f", "x")
            memory_cell = _mean_std_text([r["memory"] for r in paired], ".3f", "x")
        lines.append(
            f"| {arm} | {ARM_TEXT[arm]} | {','.join(map(str, seeds))} | {_pct(finals)} "
            f"| {', '.join(f'{100 * a:.2f}' for a in finals)} | {_pct(bests)} "
            f"| {', '.join(f'{100 * a:.2f}' for a in bests)} "
            f"| {_mean_std_text([seconds_per_epoch(r) for r in seeds.values()], '.1f')} | {time_cell} "
            f"| {memory_cell} | {_mean_std_text([r['spikes_per_image'] for r in seeds.values()], ',.0f')} |"
        )
    if not done:
        lines.append("| - | no finished run yet | | | | | | | | | |")
    lines += ["", "Student test accuracy (%) after each epoch:", ""] + per_epoch_table(arms)
    lines += [
        "",
        "Runs: the teacher each student learned from, and the commit(s) that ran it (commands in the JSON):",
        "",
        "| run | finished | student epochs | teacher best / final (%) | teacher | s per epoch | load at end "
        "(1 / 5 / 15 min) | commit(s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, seeds in arms.items():
        for seed, run in seeds.items():
            t = run["teacher"]
            acc = " / ".join(
                "-" if a is None else f"{100 * a:.2f}" for a in (t["best_test_accuracy"], t["final_test_accuracy"])
            )
            source = _teacher_source(run)
            commits = ", ".join(c[:7] for c in run.get("commits") or []) or "-"
            seconds = ", ".join(f"{t:.0f}" for t in run.get("epoch_seconds") or []) or "-"
            load = " / ".join(f"{x:.2f}" for x in run.get("load_average_at_end") or []) or "-"
            lines.append(
                f"| {arm}_s{seed} | {'yes' if run['finished'] else 'no'} | {run['epochs']} | {acc} | {source} "
                f"| {seconds} | {load} | {commits} |"
            )
    return "\n".join(lines) + "\n"


def per_epoch_table(arms: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """One row per run, finished or not (marked), one column per epoch."""
    n = max(len(r["test_acc"]) for seeds in arms.values() for r in seeds.values())
    if n == 0:
        return ["No student epoch evaluated yet."]
    lines = ["| arm | seed | " + " | ".join(f"epoch {e}" for e in range(1, n + 1)) + " |", "|---|---|" + "---|" * n]
    for arm, seeds in arms.items():
        for seed, run in seeds.items():
            mark = "" if run["finished"] else f" (unfinished: {run['epochs']} epoch(s) so far)"
            cells = [f"{100 * a:.2f}" for a in run["test_acc"]] + ["-"] * (n - len(run["test_acc"]))
            lines.append(f"| {arm} | {seed}{mark} | " + " | ".join(cells) + " |")
    return lines


def _teacher_source(run: dict[str, Any]) -> str:
    restored = run["teacher"]["restored_from"]
    if restored:
        return f"restored from {os.path.basename(os.path.normpath(restored))}"
    trained = run["teacher_epochs"] or run["teacher"]["best_test_accuracy"] is not None
    return "trained here" if trained else "-"


def curves(runs: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """The finished runs as ``plot_curves``'s input: ``{arm: {seed: {"curve": [(epoch, accuracy)]}}}``."""
    return {
        arm: {seed: {"curve": [(i + 1, a) for i, a in enumerate(run["test_acc"])]} for seed, run in seeds.items()}
        for arm, seeds in by_arm(runs, finished_only=True).items()
    }


def plot(runs: dict[str, Any], path: str) -> None:
    """Test accuracy per epoch, one line per arm (mean over the finished seeds, min-max band)."""
    from snnjax.methods.idsnn import ablation

    ablation.plot_curves(curves(runs), path)


def main(argv: list[str]) -> None:
    write_report_files(
        argv, "options_60k_report.py", collect, report, JSON_PATH, REPORT_PATH, plot, PLOT_PATH, should_plot=curves
    )


if __name__ == "__main__":
    main(sys.argv)
