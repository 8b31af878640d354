"""One run per workdir: an exclusive lock file, ``WORKDIR/.snnjax.lock``, held for the whole run.

Two launches on one workdir would interleave their checkpoints and log every step twice, so the
second one stops at once, naming the holder. The lock is a JSON file (host, PID, the PID's start
time, start time, command) created with ``O_EXCL``; the holder refreshes its mtime every
``HEARTBEAT_S`` seconds and removes it at exit. A lock left by a run that died without cleaning up
(``kill -9``, power loss) is taken over with a warning when

* it was taken on this host and its process is gone (or the PID now belongs to another process), or
* it was taken on another host and not refreshed for ``stale_after_s`` seconds (default
  :data:`STALE_AFTER_S`, ``$SNNJAX_LOCK_STALE_S``): a live holder refreshes it far more often.

In a multi-process run only process 0 takes it (the launcher); the others wait for its outcome.

This module imports the standard library only, so that a launcher can load it from its file before
JAX, Flax and orbax (seconds of imports) and stop a launch on a workdir that a live run on this host
holds at once, in one line, writing nothing (:func:`exit_if_busy`). The lock's path comes from
:mod:`snnjax.workdir_layout` (standard library only as well): imported from the package when this
module is, loaded from its file next to the package's ``__init__`` when this module was loaded from
its file (importing ``snnjax.workdir_layout`` would run ``snnjax/__init__.py``, which imports JAX).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import threading
import time
from typing import Any


def _layout_from_file() -> Any:
    """``snnjax/workdir_layout.py`` loaded from its file, without its package (as
    ``snnjax.launch.load_standalone`` loads this module, under the same kind of name)."""
    import importlib.util

    name = "_snnjax_standalone_workdir_layout"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workdir_layout.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


if __package__:  # imported as snnjax.train.workdir_lock
    from snnjax import workdir_layout
else:  # loaded from its file by a launcher, before JAX
    workdir_layout = _layout_from_file()

# How :func:`exit_if_busy` ends, as ``snnjax.user_errors.report`` ends a WorkdirLockedError (its
# EXIT_FAILURE and line); repeated here because this module may import the standard library only.
EXIT_BUSY = 1
ERROR_PREFIX = "snnjax: error: "
STALE_AFTER_S = 600.0  # another host's lock not refreshed for this long is taken over
HEARTBEAT_S = 30.0  # how often the holder refreshes the lock's mtime


class WorkdirLockedError(RuntimeError):
    """Another live run holds the workdir."""


def _pid_start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so count from its closing parenthesis.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether process ``pid`` runs on this host (and, when ``start_ticks`` is known, is the same
    process that took the lock rather than a later one given the recycled PID)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if start_ticks is not None:
        now = _pid_start_ticks(pid)
        return now is None or now == start_ticks
    return True


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lock: read from the lock file."""

    host: str
    pid: int
    started: float  # Unix time the lock was taken
    command: str
    pid_start_ticks: int | None = None

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"PID {self.pid} on {self.host}, started {when}: {self.command}"


def _read(path: str) -> tuple[Holder | None, float]:
    """The holder recorded in ``path`` (None when unreadable, e.g. torn) and the file's mtime."""
    mtime = os.stat(path).st_mtime
    try:
        with open(path) as f:
            d = json.load(f)
        return Holder(
            str(d["host"]), int(d["pid"]), float(d["started"]), str(d["command"]), d.get("pid_start_ticks")
        ), mtime
    except (OSError, ValueError, KeyError, TypeError):
        return None, mtime


def stale_reason(holder: Holder | None, mtime: float, *, host: str, stale_after_s: float, now: float) -> str | None:
    """Why a lock may be taken over (a phrase for the warning), or None while its holder may be alive."""
    age = now - mtime
    if holder is None:
        # A torn lock file (the holder died while writing it) or a foreign file: trust its age only.
        return f"unreadable lock file not refreshed for {age:.0f} s" if age > stale_after_s else None
    if holder.host == host:
        return None if pid_alive(holder.pid, holder.pid_start_ticks) else f"process {holder.pid} is gone"
    if age > stale_after_s:
        return f"not refreshed for {age:.0f} s (> {stale_after_s:g} s, $SNNJAX_LOCK_STALE_S)"
    return None


class WorkdirLock:
    """The lock of one workdir, held by this process; use :func:`acquire`."""

    def __init__(self, path: str, holder: Holder):
        self.path = path
        self.holder = holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name="snnjax-workdir-lock", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        """Remove the lock file if it is still ours (idempotent)."""
        self._stop.set()
        try:
            current, _ = _read(self.path)
        except OSError:
            return
        if current is not None and (current.host, current.pid) == (self.holder.host, self.holder.pid):
            try:
                os.remove(self.path)
            except OSError:
                pass

    def __enter__(self) -> WorkdirLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _take_over(path: str, holder: Holder | None, mtime: float) -> bool:
    """Remove the stale lock ``path`` if it is still the one judged stale; False when another
    launcher is doing the same or the lock changed (only the holder of ``path.takeover`` may remove it)."""
    guard = path + ".takeover"
    try:
        os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        try:  # a launcher killed inside this short critical section leaves the guard behind
            if time.time() - os.stat(guard).st_mtime > 60:
                os.remove(guard)
        except OSError:
            pass
        return False
    try:
        try:
            again, again_mtime = _read(path)
        except FileNotFoundError:
            return False
        if again == holder and again_mtime == mtime:
            os.remove(path)
            return True
        return False
    finally:
        os.remove(guard)


def busy_message(workdir: str, holder: Holder | None) -> str:
    """The one-line refusal of a launch on ``workdir`` while ``holder`` (None: unreadable) holds it."""
    who = holder.describe() if holder else "an unreadable lock file"
    path = workdir_layout.lock(workdir)
    return (
        f"--workdir={workdir} is in use by another run ({who}). Fix: wait for it to end, stop it, "
        f"or use another --workdir (if that run is dead on another host, delete {path})."
    )


def workdir_arg(argv: list[str]) -> str | None:
    """The value of ``--workdir`` in ``argv`` as absl reads it (``--workdir=W``, ``--workdir W``, one
    dash too; the last one wins), or None when it is not there."""
    found = None
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--":  # absl reads no flag after it
            break
        name, eq, value = arg.lstrip("-").partition("=")
        if not arg.startswith("-") or name != "workdir":
            continue
        if eq:
            found = value
        elif i + 1 < len(argv):
            found = argv[i + 1]
    return found


def refusal(argv: list[str]) -> str | None:
    """The one-line refusal (:func:`busy_message`) when a live process on this host holds the lock
    of ``argv``'s ``--workdir``, else None; reads the lock only, never takes or changes it.

    Only a holder on this host is judged here, from its PID: that needs no clock and no peer. In a
    multi-process run another host's lock may be a dead run's that process 0 is about to take over,
    so that case (and a stale or unreadable lock) is left to :func:`acquire` once the launcher has
    started (the same line then, after the imports). The run's own process 0 cannot be the holder:
    it takes the lock after a collective of all the run's processes (the launcher's
    ``check_same_everywhere``), which each process reaches only after this check.
    """
    workdir = workdir_arg(argv)
    if not workdir:
        return None
    workdir = os.path.abspath(workdir)
    try:
        holder, _ = _read(workdir_layout.lock(workdir))
    except OSError:  # no lock (or no workdir): nothing holds it
        return None
    if holder is None or holder.host != socket.gethostname():
        return None
    if not pid_alive(holder.pid, holder.pid_start_ticks):
        return None  # a dead run's lock: acquire takes it over, with its warning
    return busy_message(workdir, holder)


def exit_if_busy(argv: list[str]) -> None:
    """End the process with :func:`refusal`'s line on stderr and exit code :data:`EXIT_BUSY` when a
    live run on this host holds ``argv``'s ``--workdir``; return otherwise. Writes nothing anywhere
    else: the workdir, its ``snnjax.log`` included, belongs to the run that holds it. ``--check``
    (check the command only) never touches the workdir, so a busy one does not stop it."""
    if "--check" in argv or "--check=true" in argv:
        return
    message = refusal(argv)
    if message is not None:
        print(ERROR_PREFIX + message, file=sys.stderr, flush=True)
        sys.exit(EXIT_BUSY)


def _stale_after_s() -> float:
    return float(os.environ.get("SNNJAX_LOCK_STALE_S", STALE_AFTER_S))


def acquire(
    workdir: str,
    *,
    command: str | None = None,
    stale_after_s: float | None = None,
    warn: Any = None,
) -> WorkdirLock:
    """Take the lock of ``workdir`` (which must exist) for this process.

    Raises :class:`WorkdirLockedError` (one line: holder and fix) when a live run holds it; takes a
    stale one over, calling ``warn(message)`` (default: print to stderr) once.
    """
    path = workdir_layout.lock(workdir)
    host = socket.gethostname()
    stale_after_s = _stale_after_s() if stale_after_s is None else stale_after_s
    warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
    me = Holder(host, os.getpid(), time.time(), command or " ".join(sys.argv), _pid_start_ticks(os.getpid()))
    for _ in range(20):  # a few rounds: another launcher may be taking over the same stale lock
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder, mtime = _read(path)
            except FileNotFoundError:
                continue  # released between our open and our read
            reason = stale_reason(holder, mtime, host=host, stale_after_s=stale_after_s, now=time.time())
            if reason is None:
                raise WorkdirLockedError(busy_message(workdir, holder)) from None
            if _take_over(path, holder, mtime):
                warn(
                    f"warning: took over the lock of --workdir={workdir} from "
                    f"{holder.describe() if holder else 'an unreadable lock file'} ({reason})"
                )
            else:
                time.sleep(0.05)  # another launcher is taking it over: look again
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(dataclasses.asdict(me), f)
            f.flush()
            os.fsync(f.fileno())
        return WorkdirLock(path, me)
    raise WorkdirLockedError(f"--workdir={workdir}: could not take {path} (other launches keep taking it). Fix: retry.")
