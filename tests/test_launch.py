"""End to end through ``launch.py`` on the embedded digits data (tiny widths, few epochs).

The subprocesses inherit the 8 fake CPU devices from conftest, so these runs also exercise the
sharded path (global batch 64 over 8 devices).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from absl import flags
from launch_helpers import ROOT, TINY, analyze, final_params, launch
from ml_collections import config_flags

from snnjax import launch as launch_lib
from snnjax import workdir_layout
from snnjax.train import workdir_lock as wl

# A tiny IDSNN run: width-4 teacher and student, T = 2, 1 epoch each, no progress bars.
TINY_IDSNN = [
    *TINY,
    "--config.teacher.model.width=4",
    "--config.teacher.train.progress_bar=False",
    "--config.teacher.train.tensorboard=False",
    "--config.train.epochs=1",
    "--config.teacher.train.epochs=1",
    "--config.model.time_steps=2",
]


def test_teacher_run_writes_every_output(tmp_path):
    wd = tmp_path / "teacher"
    cache = tmp_path / "xla_cache"
    launch(
        "configs/teacher.py:digits",
        wd,
        *TINY,
        "--config.train.epochs=2",
        "--config.train.tensorboard=True",
        f"--compilation_cache={cache}",
    )
    assert len(os.listdir(cache)) >= 2  # the train and eval steps, at least, were kept
    summary = json.loads((wd / "summary.json").read_text())
    assert 0.0 <= summary["best_test_accuracy"] <= 1.0
    # 2 epochs of a width-4 ResNet34: this early the test accuracy is chaotic (float rounding alone
    # moved it between 0.19 and 0.35 under kaiming init; 0.14 with the PyTorch init of the preset),
    # so the check is that it learned: the training loss fell and the accuracy is above chance (0.1).
    assert summary["best_test_accuracy"] > 0.1
    assert summary["steps"] == 2 * (1437 // 64) and summary["devices"] == 8
    records = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    for key in ("train_loss", "train_accuracy", "test_accuracy", "lr"):
        assert all(key in r for r in epochs)
    assert any("images_per_s" in r for r in records if r["kind"] == "train")
    assert (wd / "curves.png").stat().st_size > 1000
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(wd / "tensorboard" / "train"))


def test_killed_run_resumes_bitwise_identically(tmp_path):
    args = [*TINY, "--config.train.epochs=2", "--config.train.checkpoint_every_steps=4"]
    ref = tmp_path / "uninterrupted"
    launch("configs/baseline.py:digits", ref, *args, "--config.model.time_steps=2")

    run = tmp_path / "killed"
    proc = launch("configs/baseline.py:digits", run, *args, "--config.model.time_steps=2", background=True)
    ckdir = run / "checkpoints" / "train"
    deadline = time.time() + 300
    while time.time() < deadline:  # SIGKILL once a mid-epoch checkpoint is complete
        done = [int(s) for s in os.listdir(ckdir) if s.isdigit()] if ckdir.exists() else []
        if any(s >= 8 for s in done):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(int(s) for s in os.listdir(ckdir) if s.isdigit())
    assert 8 <= killed_at < 44, "the kill must land mid-run"

    out = launch("configs/baseline.py:digits", run, *args, "--config.model.time_steps=2")
    assert "resumed from" in out.stderr
    step_a, a = final_params(ref)
    step_b, b = final_params(run)
    assert step_a == step_b == 44
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_array_equal(x, y)
    # The log holds each step once, as if the run had never stopped.
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epoch_steps = [r["step"] for r in records if r["kind"] == "epoch"]
    assert epoch_steps == [22, 44]
    ref_sum = json.loads((ref / "summary.json").read_text())
    run_sum = json.loads((run / "summary.json").read_text())
    assert ref_sum["best_test_accuracy"] == run_sum["best_test_accuracy"]
    # Timings total both processes: images counted by the killed one up to its last checkpoint plus the
    # resumed one's make the whole run's 44 steps x 64 (before: the resumed process's alone).
    assert ref_sum["resumed_from_step"] is None and run_sum["resumed_from_step"] == killed_at
    for s in (ref_sum, run_sum):
        assert round(s["train_images_per_s"] * s["train_time_s"]) == 44 * 64


def _leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_idsnn_pipeline_runs_and_skips_the_finished_teacher(tmp_path):
    wd = tmp_path / "idsnn"
    args = [
        *TINY_IDSNN,
    ]
    first = launch("configs/idsnn.py:digits", wd, *args)
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["pipeline"] == "idsnn" and summary["init"] and summary["kd"]
    assert 0.0 <= summary["best_test_accuracy"] <= 1.0
    assert summary["teacher"]["model"] == "resnet34"
    assert summary["transplant"]["transplanted"] > 0
    assert 0.0 < summary["spikes"]["mean_firing_rate"] < 1.0 and summary["spikes"]["sops_per_example"] > 0
    report = (wd / "transplant_report.txt").read_text()
    assert "stage2_block1/conv1/kernel" in report and "kept initialisation" in report
    stages = {json.loads(line)["stage"] for line in (wd / "metrics.jsonl").read_text().splitlines()}
    assert stages == {"teacher", "student"}
    assert "[teacher] finished earlier" not in first.stderr

    # One more student epoch: the finished teacher is restored, not retrained (the same command again would
    # stop at once with the finished run's summary: tests/train/test_checkpoint_fallback.py).
    again = launch("configs/idsnn.py:digits", wd, *args, "--config.train.epochs=2")
    assert "[teacher] finished earlier" in again.stderr
    # python -m snnjax.analysis --workdir: the student (Spiking ResNet18), rebuilt from its checkpoint alone.
    analysis = analyze(wd, tmp_path / "analysis")
    assert analysis["stage"] == "student" and analysis["time_steps"] == 2 and analysis["neurons"]


@pytest.mark.parametrize(
    "override,message",
    [
        ("--config.optim.learning_rate=0.1", "learning_rate"),
        ("--config.model.time_steps=0", "config.model.time_steps=0"),
        ("--config.data.batch_size=60", "multiple of the device count 8"),
        ("--config.model.neuron=gelu", "choose one of"),
        ("--config.data.name=imagenet", "config.data.name"),
    ],
)
def test_bad_configs_fail_fast_with_the_key_named(tmp_path, override, message):
    start = time.time()
    proc = launch("configs/baseline.py:digits", tmp_path / "bad", *TINY, override, check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "bad" / "checkpoints").exists()
    assert time.time() - start < 60


def test_unknown_preset_lists_the_valid_ones(tmp_path):
    proc = launch("configs/idsnn.py:digits,kd_onyl", tmp_path / "bad", check=False)
    assert proc.returncode != 0 and "valid presets" in proc.stdout + proc.stderr


def test_idsnn_transplants_from_a_separate_ann_checkpoint(tmp_path):
    """Official-code option: initialise from one ANN (here a ResNet18 of width 8) and skip the KD
    teacher entirely when KD is off; a spiking source is refused with the key named."""
    source = tmp_path / "rn18"
    launch(
        "configs/teacher.py:digits",
        source,
        *TINY[1:],
        "--config.model.name=resnet18",
        "--config.model.width=8",
        "--config.train.epochs=1",
    )
    wd = tmp_path / "init_only"
    launch(
        "configs/idsnn.py:digits,init_only",
        wd,
        *TINY,
        "--config.train.epochs=1",
        "--config.model.time_steps=2",
        f"--config.transplant.checkpoint={source}",
    )
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["transplant"]["source"]["model"] == "resnet18" and summary["transplant"]["source"]["width"] == 8
    assert summary["teacher"] == {} and not (wd / "checkpoints" / "teacher").exists()
    stages = {json.loads(line)["stage"] for line in (wd / "metrics.jsonl").read_text().splitlines()}
    assert stages == {"student"}

    bad = launch(
        "configs/idsnn.py:digits,init_only",
        tmp_path / "bad",
        *TINY,
        "--config.train.epochs=1",
        f"--config.transplant.checkpoint={wd}",
        check=False,
    )
    assert bad.returncode != 0 and "config.transplant.checkpoint" in bad.stderr


def test_typed_config_keys_are_the_overrides_on_the_command_line():
    argv = ["launch.py", "--config=configs/idsnn.py:digits", "--config.epochs_all=2", "--config.train.epochs=3"]
    values = flags.FlagValues()  # a private flag set: the session's own FLAGS stay untouched
    config_flags.DEFINE_config_file("config", None, "", flag_values=values, sys_argv=argv)
    values(argv)
    assert launch_lib.typed_config_keys(values["config"]) == {"epochs_all", "train.epochs"}


# The launcher with its pipeline replaced by one that writes the config it was handed: what the launcher
# decided (overrides, epochs_all, validation), without the minutes of training (the ablation's
# epochs_all test in tests/methods/idsnn/test_ablation_cli.py trains).
_RECORD_PIPELINE_CONFIG = """
import os
from snnjax import launch, methods

def record(config, workdir, mesh=None):
    with open(os.path.join(workdir, "pipeline_config.json"), "w") as f:
        f.write(config.to_json())

methods.get = lambda name: record
launch.run()
"""


def test_the_launcher_leaves_the_epochs_typed_on_the_command_line_to_epochs_all(tmp_path):
    wd = tmp_path / "idsnn"
    cmd = [sys.executable, "-c", _RECORD_PIPELINE_CONFIG, "--config=configs/idsnn.py:digits", f"--workdir={wd}"]
    cmd.append("--compilation_cache=")  # nothing compiles
    proc = subprocess.run(
        [*cmd, "--config.epochs_all=2", "--config.train.epochs=3"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((wd / "pipeline_config.json").read_text())
    # The typed train.epochs=3 wins (before: epochs_all overwrote it with 2); the teacher's, untyped, is 2.
    assert (config["epochs_all"], config["train"]["epochs"], config["teacher"]["train"]["epochs"]) == (2, 3, 2)


# Runs launch.py as `python launch.py ...` does and writes the names of the modules it imported on exit.
_RECORD_MODULES = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: json.dump(sorted(sys.modules), open(out, "w")))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_busy_workdir_is_refused_in_one_line_before_jax_is_imported(tmp_path):
    wd = tmp_path / "run"
    wd.mkdir()
    log = wd / "snnjax.log"
    log.write_text("the running run's log\n")
    modules = tmp_path / "modules.json"
    cmd = [sys.executable, "-c", _RECORD_MODULES, str(modules), os.path.join(ROOT, "launch.py")]
    cmd += ["--config=configs/idsnn.py:digits", "--workdir", str(wd), *TINY]
    lock = wl.acquire(str(wd), command="the running run")  # a live holder on this host: this test
    try:
        start = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        wall = time.time() - start
    finally:
        lock.release()
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == f"snnjax: error: {wl.busy_message(str(wd), lock.holder)}\n"
    assert f"in use by another run (PID {os.getpid()} on {socket.gethostname()}, started " in proc.stderr
    imported = set(json.loads(modules.read_text()))
    assert not imported & {"jax", "flax", "orbax", "tensorflow_datasets", "snnjax"}, "refused after the imports"
    assert wall < 3, f"{wall:.1f} s"  # the imports it skips take 3-9 s
    assert log.read_text() == "the running run's log\n"  # nothing appended to the holder's log
    assert sorted(os.listdir(wd)) == ["snnjax.log"]  # and nothing else written (the lock was released)


def test_a_workdir_held_on_another_host_is_refused_in_one_line_after_the_imports(tmp_path):
    """A holder on another host is judged by the lock's age once the run has started (it may be a dead
    run that process 0 of a multi-host run takes over): the same one line, and still nothing logged."""
    wd = tmp_path / "run"
    wd.mkdir()
    holder = wl.Holder("elsewhere.invalid", 1, time.time(), "the running run")
    (wd / workdir_layout.LOCK_FILE).write_text(json.dumps(holder.__dict__))
    (wd / "snnjax.log").write_text("the running run's log\n")
    assert wl.refusal(["launch.py", f"--workdir={wd}"]) is None  # left to the launcher's take_lock
    proc = launch("configs/baseline.py:digits", wd, *TINY, check=False)
    assert proc.returncode == 1
    assert proc.stderr == f"snnjax: error: {wl.busy_message(str(wd), holder)}\n"
    assert (wd / "snnjax.log").read_text() == "the running run's log\n"
    assert sorted(os.listdir(wd)) == [workdir_layout.LOCK_FILE, "snnjax.log"]


def test_the_early_busy_check_reads_workdir_as_absl_does_and_judges_live_local_holders_only(tmp_path):
    assert wl.workdir_arg(["l.py", "--workdir=a"]) == "a"
    assert wl.workdir_arg(["l.py", "--workdir", "b", "--config=x"]) == "b"
    assert wl.workdir_arg(["l.py", "-workdir=c", "--workdir=d"]) == "d"  # the last one wins
    assert wl.workdir_arg(["l.py", "--workdirs=e", "--", "--workdir=f"]) is None
    argv = ["launch.py", f"--workdir={tmp_path}"]
    assert wl.refusal(argv) is None  # no lock
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for pid in (dead.pid, os.getpid()):
        holder = wl.Holder(socket.gethostname(), pid, time.time(), "x", wl._pid_start_ticks(pid))
        (tmp_path / workdir_layout.LOCK_FILE).write_text(json.dumps(holder.__dict__))
        expected = None if pid == dead.pid else wl.busy_message(str(tmp_path), holder)  # a dead one: taken over
        assert wl.refusal(argv) == expected


def test_idsnn_trains_its_student_with_sltt(tmp_path):
    """``--config.train.through_time=sltt``: the Spiking ResNet18 student trains with the SLTT step
    (per-step KD from the ANN teacher); the ANN teacher keeps the default step."""
    wd = tmp_path / "sltt"
    args = [
        *TINY_IDSNN,
        "--config.train.through_time=sltt",
    ]
    out = launch("configs/idsnn.py:digits", wd, *args)
    assert "[sltt] gradients through the spatial path only, one time step at a time (all steps of T = 2)" in out.stderr
    assert out.stderr.count("[sltt]") == 1  # the student only
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["pipeline"] == "idsnn" and 0.0 <= summary["best_test_accuracy"] <= 1.0
    records = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r.get("stage") == "student" and "loss" in r]
    assert losses and all(np.isfinite(losses))


def test_idsnn_digits_with_a_psn_student_trained_with_tet_runs_and_exports(tmp_path):
    """The PSN paper's recipe in IDSNN (``--config.model.neuron=psn --config.train.loss=tet``), tiny: ANN teacher ->
    transplant (the PSN parameters keep their init) -> TET + KD, a masked PSN with its lambda ramp -> export to
    SpikingJelly (with the lambda it was trained at)."""
    pytest.importorskip("torch")
    from snnjax.interop import export
    from snnjax.interop import torch as tio

    wd = tmp_path / "psn"
    launch(
        "configs/idsnn.py:digits",
        wd,
        *TINY,
        "--config.model.neuron=psn",
        "--config.model.psn_variant=masked",
        "--config.model.psn_order=2",
        "--config.model.psn_lambda_epochs=2",  # the PSN paper's lambda ramp: 0.5 after epoch 1 of 2
        "--config.model.surrogate=atan",
        "--config.train.loss=tet",
        "--config.train.tet_lambda=0.05",
        "--config.model.time_steps=2",
        "--config.train.epochs=1",
        "--config.teacher.model.name=resnet18",
        "--config.teacher.model.width=4",
        "--config.teacher.train.epochs=1",
        "--config.teacher.train.progress_bar=False",
        "--config.teacher.train.tensorboard=False",
    )
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["kd"] and 0.0 <= summary["best_test_accuracy"] <= 1.0
    records = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    student = [r for r in records if r.get("stage") == "student" and "loss" in r]
    assert student and all(np.isfinite(r["loss"]) for r in student)
    assert summary["transplant"]["transplanted"] > 0
    report = (wd / "transplant_report.txt").read_text()
    kept = [line for line in report.splitlines() if "act" in line and "kept initialisation (neuron parameter)" in line]
    assert len(kept) == 2 * 17  # weight and bias of every PSN layer of the ResNet18

    out = tmp_path / "psn.pth"
    assert export.main(["--workdir", str(wd), "--out", str(out)]) == 0
    sidecar = json.loads((tmp_path / "psn.pth.json").read_text())
    assert sidecar["neuron"]["node"] == "MaskedPSN" and sidecar["neuron"]["k"] == 2 and sidecar["neuron"]["T"] == 2
    assert sidecar["neuron"]["lambda_init"] == 0.5 and sidecar["model"]["psn_lambda_epochs"] == 0.0  # as trained
    state = tio.load_state_dict(str(out))
    np.testing.assert_array_equal(state["sn1.mask0"], [[1.0, 0.0], [1.0, 1.0]])
    assert state["sn1.weight"].shape == (2, 2) and state["sn1.bias"].shape == (2, 1)
    assert tio.from_torch(state).report.arch.psn == "masked"


def test_check_validates_the_command_without_touching_the_workdir(tmp_path):
    """``--check``: one line, exit 0, for a command that would start; the usual one-line error and exit 2
    for a bad override; the workdir is never made, and a busy one does not stop the check."""
    wd = tmp_path / "run"
    good = launch(
        "configs/snn2ann.py:digits,bptt", wd, "--config.model.dropout=(0.25,0.0)", "--config.seed=3", "--check"
    )
    assert good.stdout == f"config OK: pipeline snn2ann, digits, seed 3; workdir {wd}\n"
    assert not wd.exists()
    bad = launch("configs/snn2ann.py:digits", wd, "--config.model.membrane_dropout=1.5", "--check", check=False)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "snnjax: error: config.model.membrane_dropout=1.5 must be in [0, 1) (official 0.5)"
    ]
    assert not wd.exists()
    wd.mkdir()
    lock = wl.acquire(str(wd), command="the running run")
    try:
        busy = launch("configs/snn2ann.py:digits", wd, "--check")
    finally:
        lock.release()
    assert busy.stdout.startswith("config OK: pipeline snn2ann")
    assert sorted(os.listdir(wd)) == []
