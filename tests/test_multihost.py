"""Multi-process runs on this machine: 2 real processes, localhost coordinator, 1 CPU device each.

Each test starts ``python -m snnjax.launch`` twice with ``JAX_COORDINATOR_ADDRESS`` (a free port),
``JAX_NUM_PROCESSES=2`` and ``JAX_PROCESS_ID=0/1``, as a pod or a multi-node GPU job would, and
bounds every wait. Runs are tiny (width 4, T=2, batch 128) and share one compilation cache.
Select them with ``pytest -m multihost``; ``-m "not multihost"`` skips them.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

pytestmark = pytest.mark.multihost

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 1437 train examples / 128 = 11 steps per epoch, 22 in all; a checkpoint every 4 steps.
TINY = [
    "--config.model.width=4",
    "--config.model.time_steps=2",
    "--config.data.batch_size=128",
    "--config.train.epochs=2",
    "--config.train.checkpoint_every_steps=4",
    "--config.train.progress_bar=False",
    "--config.train.tensorboard=False",
]
TOTAL_STEPS = 22
RUN_TIMEOUT_S = 900  # generous: a loaded 2-core machine compiles slowly; a hang still ends


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("xla_cache"))


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(devices: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
    env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        env.pop(name, None)
    env.update(extra)
    return env


def command(config: str, workdir, cache: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snnjax.launch",
        f"--config={config}",
        f"--workdir={workdir}",
        f"--compilation_cache={cache}",
        *TINY,
        *overrides,
    ]


def start_processes(config, workdir, cache, *overrides, num=2, heartbeat_s=10, log_dir=None):
    """``num`` processes of one run; their stdout+stderr go to ``<log_dir>/process<i>.log``."""
    port = free_port()
    log_dir = log_dir or os.path.dirname(str(workdir))
    procs = []
    for i in range(num):
        env = child_env(
            1,
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES=str(num),
            JAX_PROCESS_ID=str(i),
            SNNJAX_HEARTBEAT_TIMEOUT_S=str(heartbeat_s),
            SNNJAX_INIT_TIMEOUT_S="120",
        )
        log = open(os.path.join(log_dir, f"{os.path.basename(str(workdir))}.process{i}.log"), "w")
        procs.append(
            subprocess.Popen(
                command(config, workdir, cache, *overrides), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        )
        procs[-1].log_path = log.name
        log.close()
    return procs


def read_log(proc) -> str:
    with open(proc.log_path) as f:
        return f.read()


def wait_all(procs, timeout=RUN_TIMEOUT_S) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in procs]
    finally:
        kill_all(procs)


def kill_all(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()


def run_processes(config, workdir, cache, *overrides, **kwargs) -> None:
    procs = start_processes(config, workdir, cache, *overrides, **kwargs)
    codes = wait_all(procs)
    if codes != [0] * len(procs):
        logs = "\n".join(
            f"--- process {i} (exit {c}) ---\n{read_log(p)[-3000:]}" for i, (p, c) in enumerate(zip(procs, codes))
        )
        raise AssertionError(f"multi-process run failed: {codes}\n{logs}")


def run_single(config, workdir, cache, *overrides, devices=2) -> None:
    proc = subprocess.run(
        command(config, workdir, cache, *overrides),
        cwd=ROOT,
        env=child_env(devices),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def read_state(workdir, stage="train", step=None):
    """The saved train state at ``step`` (default: the latest) as host arrays, whatever wrote it."""
    ckdir = os.path.join(str(workdir), "checkpoints", stage)
    step = step if step is not None else max(int(s) for s in os.listdir(ckdir) if s.isdigit())
    path = os.path.join(ckdir, str(step), "state")
    checkpointer = ocp.StandardCheckpointer()
    tree = checkpointer.metadata(path)
    tree = getattr(getattr(tree, "item_metadata", tree), "tree", getattr(tree, "item_metadata", tree))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)
    return step, jax.device_get(checkpointer.restore(path, target))


def assert_same_params(a, b, atol=1e-5):
    flat_a = jax.tree_util.tree_leaves_with_path(a["params"])
    flat_b = dict((jax.tree_util.keystr(k), v) for k, v in jax.tree_util.tree_leaves_with_path(b["params"]))
    assert len(flat_a) == len(flat_b)
    for key, value in flat_a:
        np.testing.assert_allclose(value, flat_b[jax.tree_util.keystr(key)], atol=atol, rtol=1e-4, err_msg=key)


def records(workdir):
    with open(os.path.join(str(workdir), "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """The 1-process run (2 devices: the same global batch of 128 split the same way)."""
    workdir = tmp_path_factory.mktemp("single") / "run"
    run_single("baseline.py:digits", workdir, cache)
    return workdir


def test_two_processes_train_like_one_write_logs_once_and_resume_after_a_kill(tmp_path, cache, reference):
    """Both processes SIGKILLed once a mid-run checkpoint is complete, then the same command again: the
    run ends with the 1-process run's parameters and test accuracies, every step and epoch logged once,
    and one writer (process 0: one TensorBoard file per launch, no stray write probes)."""
    workdir = tmp_path / "killed"
    procs = start_processes("baseline.py:digits", workdir, cache, "--config.train.tensorboard=True")
    ckdir = workdir / "checkpoints" / "train"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while time.monotonic() < deadline:  # SIGKILL both once a mid-run checkpoint is complete
            done = [int(s) for s in os.listdir(ckdir) if s.isdigit()] if ckdir.exists() else []
            if any(s >= 4 for s in done) or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.05)
    finally:
        kill_all(procs)
    killed_at = max(int(s) for s in os.listdir(ckdir) if s.isdigit())
    assert 4 <= killed_at < TOTAL_STEPS, "the kill must land mid-run"

    run_processes("baseline.py:digits", workdir, cache, "--config.train.tensorboard=True")
    step, resumed = read_state(workdir)
    _, one = read_state(reference)
    assert step == TOTAL_STEPS and int(resumed["step"]) == TOTAL_STEPS
    assert_same_params(resumed, one)
    assert f"resumed from {ckdir / str(killed_at)}" in read_log_of(workdir, 0)
    # One writer: every step and epoch logged exactly once (the records after the checkpoint were
    # dropped and re-logged once), as in the 1-process run.
    recs = records(workdir)
    keys = [(r["kind"], r["step"]) for r in recs]
    assert len(keys) == len(set(keys)) and keys == [(r["kind"], r["step"]) for r in records(reference)]
    epochs = [r for r in recs if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    ref_epochs = [r for r in records(reference) if r["kind"] == "epoch"]
    np.testing.assert_allclose(
        [r["test_accuracy"] for r in epochs], [r["test_accuracy"] for r in ref_epochs], atol=1e-6
    )  # evaluation reduced over both processes' devices
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["devices"] == 2 and summary["processes"] == 2
    events = os.listdir(workdir / "tensorboard" / "train")
    assert len([e for e in events if e.startswith("events.out.tfevents")]) == 2  # process 0, once per launch
    assert not [n for n in os.listdir(workdir) if n.startswith(".write_probe")]


def read_log_of(workdir, i):
    with open(os.path.join(os.path.dirname(str(workdir)), f"{os.path.basename(str(workdir))}.process{i}.log")) as f:
        return f.read()


def test_idsnn_pipeline_with_two_processes(tmp_path, cache):
    workdir = tmp_path / "idsnn"
    run_processes(
        "idsnn.py:digits",
        workdir,
        cache,
        "--config.train.epochs=1",
        "--config.data.batch_size=256",
        "--config.teacher.model.name=resnet18",
        "--config.teacher.model.width=4",
        "--config.teacher.train.epochs=1",
        "--config.teacher.train.progress_bar=False",
        "--config.teacher.train.tensorboard=False",
    )
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["init"] and summary["kd"]
    assert summary["transplant"]["transplanted"] > 0 and 0.0 <= summary["best_test_accuracy"] <= 1.0
    assert (workdir / "transplant_report.txt").read_text().strip()
    recs = records(workdir)
    for stage in ("teacher", "student"):
        keys = [(r["kind"], r["step"]) for r in recs if r["stage"] == stage]
        assert keys and len(keys) == len(set(keys)), stage
    assert (workdir / "checkpoints" / "teacher").is_dir() and (workdir / "checkpoints" / "student").is_dir()


def test_lost_peer_is_named_and_the_survivor_exits(tmp_path, cache):
    workdir = tmp_path / "lost"
    procs = start_processes("baseline.py:digits", workdir, cache, "--config.train.epochs=50", heartbeat_s=5)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline and not (workdir / "metrics.jsonl").exists():
            assert all(p.poll() is None for p in procs), read_log(procs[0])[-3000:]
            time.sleep(0.1)
        procs[1].send_signal(signal.SIGKILL)
        t_kill = time.monotonic()
        code = procs[0].wait(timeout=60)  # heartbeat timeout 5 s + the report, not forever
        waited = time.monotonic() - t_kill
    finally:
        kill_all(procs)
    log = read_log(procs[0])
    assert code != 0 and waited < 60, log[-3000:]
    named = re.search(r"lost peer: process 1\b|stopped sending heartbeats\):\s*1\b|Task 1 heartbeat timeout", log)
    assert named, log[-3000:]


def test_two_processes_streaming_records_train_like_one_in_memory(tmp_path, cache, reference):
    """Each process reads only its slice of every batch from the record files; together they train and
    evaluate (padded, masked last batch over both processes) as one in-memory process with 2 devices."""
    from snnjax.data.write_records import export_dataset

    records_dir = tmp_path / "digits_records"
    export_dataset("digits", records_dir, progress=False)
    workdir = tmp_path / "streamed"
    run_processes(
        "baseline.py:digits",
        workdir,
        cache,
        "--config.data.streaming=True",
        f"--config.data.records_dir={records_dir}",
        "--config.data.workers=1",
    )
    step, two = read_state(workdir)
    _, one = read_state(reference)
    assert step == TOTAL_STEPS
    assert_same_params(two, one)
    losses = {r["step"]: r["loss"] for r in records(workdir) if r["kind"] == "train"}
    ref_losses = {r["step"]: r["loss"] for r in records(reference) if r["kind"] == "train"}
    assert losses.keys() == ref_losses.keys()
    np.testing.assert_allclose(list(losses.values()), list(ref_losses.values()), rtol=1e-5)
    accuracy = [r["test_accuracy"] for r in records(workdir) if r["kind"] == "epoch"]
    ref_accuracy = [r["test_accuracy"] for r in records(reference) if r["kind"] == "epoch"]
    np.testing.assert_allclose(accuracy, ref_accuracy, atol=1e-6)  # 360 test images, each counted once
