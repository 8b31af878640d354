"""experiments/options_60k_report.py: a made-up ROOT/options (2 arms, 1-2 seeds, one run unfinished) read,
merged and rendered, the means and ratios checked by hand; the committed report equals the rendering
of the committed per-run JSON (docs/training_options_fmnist_60k.json) once both exist."""

import importlib.util
import json
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("options_60k_report", ROOT / "experiments" / "options_60k_report.py")
report_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_script)
JSON_PATH = ROOT / "docs" / "training_options_fmnist_60k.json"
REPORT_PATH = ROOT / "docs" / "training_options_60k.md"


def _write_run(workdir, *, student, teacher=(), summary=None, queued=True, teacher_summary=None):
    """A workdir as the queue leaves it: ``student``/``teacher`` are ``(test_accuracy, seconds)`` per epoch."""
    workdir.mkdir(parents=True)
    lines = []
    for stage, epochs in (("teacher", teacher), ("student", student)):
        for e, (acc, seconds) in enumerate(epochs, start=1):
            lines.append({"stage": stage, "kind": "train", "step": 10 * e, "epoch": e - 0.5, "loss": 1.0})
            lines.append(
                {
                    "stage": stage,
                    "kind": "epoch",
                    "step": 10 * e,
                    "epoch": e,
                    "train_loss": 0.5,
                    "test_accuracy": acc,
                    "epoch_train_seconds": seconds,
                }
            )
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (workdir / "queue_commits.txt").write_text("a" * 40 + "\n")
    if teacher_summary is not None:
        (workdir / "teacher_summary.json").write_text(json.dumps(teacher_summary))
    if summary is not None:
        (workdir / "summary.json").write_text(json.dumps(summary))
    if queued:
        queue = {"name": f"options/{workdir.name}", "commit": "b" * 40, "commits": ["a" * 40, "b" * 40]}
        queue["load_average_at_end"] = [1.5, 2.25, 3.0]
        queue["command"] = f"python launch.py --config configs/idsnn.py:fashion_mnist_60k # {workdir.name}"
        (workdir / "queue_run.json").write_text(json.dumps(queue))


def _summary(best, final, memory, spikes, teacher):
    return {
        "stage": "student",
        "best_test_accuracy": best,
        "final_test_accuracy": final,
        "train_step_memory": {"argument": 1, "output": 2, "temp": 3, "total": memory},
        "spikes": {"spikes_per_example": spikes, "time_steps": 4},
        "teacher": teacher,
        "environment": {"git": {"commit": "b" * 40, "dirty": False}},
    }


TEACHER = {"best_test_accuracy": 0.93, "final_test_accuracy": 0.925, "stage": "teacher"}


@pytest.fixture
def root(tmp_path):
    options = tmp_path / "options"
    for seed, (accs, secs, memory, spikes) in {
        0: ([0.80, 0.90, 0.88], [500.0, 100.0, 100.0], 1000, 300.0),
        1: ([0.82, 0.86, 0.92], [120.0, 120.0, 120.0], 2000, 200.0),
    }.items():
        teacher_best = TEACHER["best_test_accuracy"] - 0.01 * seed
        teacher = {**TEACHER, "best_test_accuracy": teacher_best}
        _write_run(
            options / f"lif_s{seed}",
            student=list(zip(accs, secs)),
            teacher=[(0.9, 50.0), (teacher_best, 50.0)],
            teacher_summary=teacher,
            summary=_summary(max(accs), accs[-1], memory, spikes, teacher),
        )
    # PSN + TET, seed 0: restored the teacher of lif_s0 (its own summary holds only the checkpoint's meta).
    restored = {"restored_from": str(options / "lif_s0"), "best_test_accuracy": 0.93, "epoch": 2}
    _write_run(
        options / "psn_tet_s0",
        student=[(0.85, 900.0), (0.91, 150.0), (0.905, 250.0)],
        summary=_summary(0.91, 0.905, 3000, 150.0, restored),
    )
    # seed 1: still training (2 of 3 epochs, no summary, no queue_run.json).
    _write_run(options / "psn_tet_s1", student=[(0.70, 300.0), (0.75, 300.0)], queued=False)
    (options / "sltt_s1").mkdir()  # just started: nothing evaluated yet
    return tmp_path


def test_collect_reads_every_run(root):
    runs = report_script.collect(str(root), {})
    assert sorted(runs) == ["lif_s0", "lif_s1", "psn_tet_s0", "psn_tet_s1"]
    lif = runs["lif_s0"]
    assert lif["finished"] is True and lif["epochs"] == 3 and lif["teacher_epochs"] == 2
    assert lif["test_acc"] == [0.80, 0.90, 0.88] and lif["epoch_seconds"] == [500.0, 100.0, 100.0]
    assert (lif["best_test_accuracy"], lif["final_test_accuracy"]) == (0.90, 0.88)
    assert lif["train_step_memory"]["total"] == 1000 and lif["spikes_per_image"] == 300.0
    assert lif["teacher"] == {"best_test_accuracy": 0.93, "final_test_accuracy": 0.925, "restored_from": None}
    assert lif["commit"] == "b" * 40 and lif["commits"] == ["a" * 40, "b" * 40]
    assert lif["command"].endswith("# lif_s0")
    # The restored teacher's accuracies come from the workdir it was restored from.
    psn = runs["psn_tet_s0"]
    assert psn["teacher"] == {
        "best_test_accuracy": 0.93,
        "final_test_accuracy": 0.925,
        "restored_from": str(root / "options" / "lif_s0"),
    }
    unfinished = runs["psn_tet_s1"]
    assert unfinished["finished"] is False and unfinished["epochs"] == 2 and unfinished["test_acc"] == [0.70, 0.75]
    assert (unfinished["best_test_accuracy"], unfinished["final_test_accuracy"]) == (0.75, 0.75)
    assert unfinished["command"] is None and unfinished["commits"] == ["a" * 40]  # from queue_commits.txt


def test_ratios_by_hand_leave_out_the_first_epoch():
    runs = {"lif": {"epoch_seconds": [500.0, 100.0, 100.0], "train_step_memory": {"total": 1000}}}
    psn = {"epoch_seconds": [900.0, 150.0, 250.0], "train_step_memory": {"total": 3000}}
    assert report_script.ratios(psn, runs["lif"]) == pytest.approx({"time": 2.0, "memory": 3.0})
    assert report_script.seconds_per_epoch({"epoch_seconds": [7.0]}) == 7.0
    assert report_script.ratios({"epoch_seconds": [], "train_step_memory": None}, runs["lif"]) == {
        "time": None,
        "memory": None,
    }


def test_report_numbers_by_hand(root):
    text = report_script.report(report_script.collect(str(root), {}))
    assert text.startswith("<!-- generated by experiments/options_60k_report.py")
    # lif: finals 88, 92 -> 90.00 ± 2.83; bests 90, 92 -> 91.00 ± 1.41; s/epoch 100, 120 -> 110.0 ± 14.1;
    # spikes 300, 200 -> 250 ± 71.
    assert (
        "| lif | LIF, BPTT | 0,1 | 90.00 ± 2.83 | 88.00, 92.00 | 91.00 ± 1.41 | 90.00, 92.00 "
        "| 110.0 ± 14.1 | 1 | 1 | 250 ± 71 |"
    ) in text
    # psn_tet: only seed 0 finished; 200 s / epoch (150, 250) vs lif_s0's 100 -> 2.000x; memory 3000 / 1000.
    assert "| psn_tet | PSN + TET loss | 0 | 90.50 | 90.50 | 91.00 | 91.00 | 200.0 | 2.000x | 3.000x | 150 |" in text
    assert "| psn_tet | 1 (unfinished: 2 epoch(s) so far) | 70.00 | 75.00 | - |" in text
    assert "| lif | 1 | 82.00 | 86.00 | 92.00 |" in text
    # Each epoch's seconds and the load at the run's end, as recorded (none for a run still training).
    assert (
        "| lif_s1 | yes | 3 | 92.00 / 92.50 | trained here | 120, 120, 120 | 1.50 / 2.25 / 3.00 | aaaaaaa, bbbbbbb |"
        in text
    )
    assert (
        "| psn_tet_s0 | yes | 3 | 93.00 / 92.50 | restored from lif_s0 | 900, 150, 250 | 1.50 / 2.25 / 3.00 "
        "| aaaaaaa, bbbbbbb |"
    ) in text
    assert "| psn_tet_s1 | no | 2 | - / - | - | 300, 300 | - | aaaaaaa |" in text
    assert "not a speed comparison of the options" in text
    assert "| sltt" not in text  # sltt_s1 has nothing evaluated yet


def test_curves_take_the_finished_runs():
    runs = {
        "lif_s0": {"finished": True, "test_acc": [0.5, 0.6]},
        "lif_s1": {"finished": False, "test_acc": [0.4]},
        "other_s0": {"finished": True, "test_acc": [0.1]},
    }
    assert report_script.curves(runs) == {"lif": {0: {"curve": [(1, 0.5), (2, 0.6)]}}}


def test_main_keeps_earlier_runs_and_never_unfinishes_a_finished_one(root, tmp_path, monkeypatch):
    json_path, md_path = tmp_path / "runs.json", tmp_path / "report.md"
    recorded = report_script.collect(str(root), {})["lif_s1"]
    earlier = {
        "lif_s7": {**recorded, "note": "recorded from another root"},
        "psn_tet_s1": {**recorded, "note": "finished before its workdir was cleared"},
    }
    json_path.write_text(json.dumps({"runs": earlier}))
    plotted = []
    monkeypatch.setattr(report_script, "JSON_PATH", str(json_path))
    monkeypatch.setattr(report_script, "REPORT_PATH", str(md_path))
    monkeypatch.setattr(report_script, "plot", lambda runs, path: plotted.append(path))
    report_script.main(["options_60k_report.py", str(root)])
    runs = json.loads(json_path.read_text())["runs"]
    assert runs["lif_s7"] == earlier["lif_s7"] and runs["psn_tet_s1"] == earlier["psn_tet_s1"]
    assert runs["lif_s0"]["test_acc"] == [0.80, 0.90, 0.88]
    assert plotted == [report_script.PLOT_PATH]


def test_no_run_yet(tmp_path):
    assert "No run recorded yet" in report_script.report({})
    # The first run's teacher is still training: listed, unfinished, no student epoch.
    _write_run(tmp_path / "options" / "lif_s0", student=[], teacher=[(0.8, 60.0)], queued=False)
    text = report_script.report(report_script.collect(str(tmp_path), {}))
    assert "| - | no finished run yet |" in text and "No student epoch evaluated yet." in text
    assert "| lif_s0 | no | 0 | - / - | trained here | - | - | aaaaaaa |" in text


@pytest.mark.skipif(not (JSON_PATH.exists() and REPORT_PATH.exists()), reason="no options run recorded yet")
def test_the_committed_report_is_the_rendering_of_the_committed_runs():
    runs = json.loads(JSON_PATH.read_text())["runs"]
    assert REPORT_PATH.read_text() == report_script.report(runs)


def test_a_run_outside_the_queue_is_finished_once_its_summary_is_written(tmp_path):
    workdir = tmp_path / "options" / "lif_s0"
    _write_run(workdir, student=[(0.80, 10.0)], summary=_summary(0.80, 0.80, 1000, 300.0, None), queued=False)
    os.remove(workdir / "queue_commits.txt")  # launched by hand, not by the queue
    assert report_script.collect(str(tmp_path), {})["lif_s0"]["finished"] is True
    os.remove(workdir / "summary.json")  # still training
    assert report_script.collect(str(tmp_path), {})["lif_s0"]["finished"] is False


def test_the_readme_quotes_each_arm_as_the_json_records_it():
    """The README's training-options row quotes seed 0's final accuracy per arm: each must be the JSON's."""
    runs = json.loads(JSON_PATH.read_text())["runs"]
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if "**Training options**" in line)
    quoted = re.findall(r"(LIF|PSN \+ TET|SLTT) (\d+\.\d+) %", row.split("each option (seed 0")[1])
    names = {"LIF": "lif_s0", "PSN + TET": "psn_tet_s0", "SLTT": "sltt_s0"}
    assert quoted, row
    for arm, value in quoted:
        assert runs[names[arm]]["finished"], arm
        assert value == f"{100 * runs[names[arm]]['final_test_accuracy']:.2f}", arm
