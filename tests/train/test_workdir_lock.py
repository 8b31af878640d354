"""One run per workdir: the lock file, its stale takeover, and two real launches on one workdir."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from launch_helpers import ROOT, TINY, launch

from snnjax import workdir_layout
from snnjax.train import workdir_lock as wl


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(workdir, **fields):
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "command": "x"}
    holder.update(fields)
    (workdir / workdir_layout.LOCK_FILE).write_text(json.dumps(holder))


def test_lock_records_the_holder_refuses_a_second_taker_and_is_released(tmp_path):
    lock = wl.acquire(str(tmp_path), command="launch.py --workdir=x")
    recorded = json.loads((tmp_path / workdir_layout.LOCK_FILE).read_text())
    assert (recorded["host"], recorded["pid"], recorded["command"]) == (
        socket.gethostname(),
        os.getpid(),
        "launch.py --workdir=x",
    )
    assert abs(recorded["started"] - time.time()) < 60
    with pytest.raises(wl.WorkdirLockedError, match=rf"in use by another run \(PID {os.getpid()} on "):
        wl.acquire(str(tmp_path))
    lock.release()
    assert not (tmp_path / workdir_layout.LOCK_FILE).exists()
    wl.acquire(str(tmp_path)).release()


def test_stale_locks_are_taken_over_with_one_warning(tmp_path):
    warnings = []
    # Same host, holder process gone.
    _write_lock(tmp_path, pid=_dead_pid())
    wl.acquire(str(tmp_path), warn=warnings.append).release()
    assert len(warnings) == 1 and "is gone" in warnings[0]
    # Same host, PID alive but reused by another process (start time differs).
    _write_lock(tmp_path, pid=os.getpid(), pid_start_ticks=1)
    wl.acquire(str(tmp_path), warn=warnings.append).release()
    assert len(warnings) == 2
    # Another host: taken over only when not refreshed for stale_after_s.
    _write_lock(tmp_path, host="elsewhere.invalid", pid=1)
    with pytest.raises(wl.WorkdirLockedError, match="elsewhere.invalid"):
        wl.acquire(str(tmp_path), stale_after_s=600, warn=warnings.append)
    old = time.time() - 601
    os.utime(tmp_path / workdir_layout.LOCK_FILE, (old, old))
    wl.acquire(str(tmp_path), stale_after_s=600, warn=warnings.append).release()
    assert len(warnings) == 3 and "not refreshed for 60" in warnings[2]


_RACER = """
import sys, time
from snnjax.train import workdir_lock as wl
try:
    lock = wl.acquire(sys.argv[1], warn=lambda m: None)
except wl.WorkdirLockedError:
    print("refused"); sys.exit(0)
print("took"); sys.stdout.flush(); time.sleep(3); lock.release()
"""


def test_one_of_several_processes_takes_over_a_stale_lock(tmp_path):
    _write_lock(tmp_path, pid=_dead_pid())
    env = {**os.environ, "PYTHONPATH": ROOT}
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(6)
    ]
    outcomes = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outcomes == ["refused"] * 5 + ["took"]


@pytest.mark.slow
def test_second_launch_on_a_busy_workdir_stops_at_once_and_a_killed_run_is_taken_over(tmp_path):
    wd = tmp_path / "run"
    args = ["--config.model.name=resnet18", "--config.train.epochs=30", *TINY]
    first = launch("configs/teacher.py:digits", wd, *args, background=True)
    try:
        deadline = time.time() + 300
        while not (wd / workdir_layout.LOCK_FILE).exists():
            assert first.poll() is None and time.time() < deadline, "the first launch never took the lock"
            time.sleep(0.5)
        second = launch("configs/teacher.py:digits", wd, *args, check=False)
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode == 1
        assert len(lines) <= 2 and f"is in use by another run (PID {first.pid} on {socket.gethostname()}" in lines[0]
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()  # SIGKILL: its lock stays behind
        first.wait()
    assert (wd / workdir_layout.LOCK_FILE).exists()
    third = launch("configs/teacher.py:digits", wd, *TINY, "--config.model.name=resnet18", "--config.train.epochs=1")
    assert f"took over the lock of --workdir={wd} from PID {first.pid}" in third.stderr and "is gone" in third.stderr
    assert not (wd / workdir_layout.LOCK_FILE).exists()
