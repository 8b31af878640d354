"""Multi-process runs: starting JAX's distributed runtime, and who writes what.

Every process of a run executes the same program (``python -m snnjax.launch ...`` on every host):
the mesh spans all devices of all processes (:mod:`snnjax.train.mesh`), each process feeds its own
devices, and collectives inside the jitted steps combine them. Files are another matter:

- checkpoints are written by every process together (orbax's multi-host protocol; the workdir must
  be one shared directory, e.g. NFS or a gcsfuse mount, visible at the same path on every host);
- everything else (``metrics.jsonl``, TensorBoard, ``summary.json``, ``curves.png``, reports) is
  written by process 0 only: :func:`is_primary` guards those writes.

:func:`initialize_from_env` starts the runtime from the environment:

- ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and
  ``JAX_PROCESS_ID``: all three, passed explicitly to :func:`jax.distributed.initialize`;
  only some of them set is an error that names the missing ones;
- none of them set: JAX's own cluster detection runs on a Cloud TPU VM, under SLURM with more
  than one task, under Open MPI with more than one rank, or when ``SNNJAX_DISTRIBUTED=auto``;
  otherwise the run is single-process and nothing is started.
- ``SNNJAX_DISTRIBUTED=off`` never starts it.

Failure detection: every process sends heartbeats to the coordinator (process 0). When one is
lost the others stop with an error naming it after ``SNNJAX_HEARTBEAT_TIMEOUT_S`` seconds
(default 100, JAX's own); ``SNNJAX_INIT_TIMEOUT_S`` (default 300) bounds the wait for all processes
to join at start.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import jax

COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"
EXPLICIT_ENV = (COORDINATOR_ENV, NUM_PROCESSES_ENV, PROCESS_ID_ENV)
MODE_ENV = "SNNJAX_DISTRIBUTED"  # auto | off (default: decide from the environment)
HEARTBEAT_ENV = "SNNJAX_HEARTBEAT_TIMEOUT_S"
INIT_TIMEOUT_ENV = "SNNJAX_INIT_TIMEOUT_S"
DEFAULT_HEARTBEAT_S = 100
DEFAULT_INIT_TIMEOUT_S = 300


class DistributedConfigError(ValueError):
    """The environment describes a multi-process run incompletely or inconsistently."""


def _int_env(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DistributedConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise DistributedConfigError(f"{name}={value} must be >= {minimum}")
    return value


def _auto_cluster(environ: Mapping[str, str]) -> str | None:
    """The name of a multi-process cluster JAX detects by itself, or None."""
    if environ.get("SLURM_JOB_ID") and int(environ.get("SLURM_NTASKS", "1") or 1) > 1:
        return "SLURM"
    if environ.get("OMPI_MCA_orte_hnp_uri") and int(environ.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1:
        return "Open MPI"
    if environ.get("TPU_WORKER_HOSTNAMES", "").count(",") > 0:
        return "Cloud TPU (GKE)"
    try:
        from jax._src.cloud_tpu_init import running_in_cloud_tpu_vm
    except ImportError:  # pragma: no cover - internal name moved
        return None
    return "Cloud TPU VM" if running_in_cloud_tpu_vm else None


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The keyword arguments for :func:`jax.distributed.initialize`, or None for a 1-process run.

    Pure function of ``environ`` (default ``os.environ``); raises :class:`DistributedConfigError`
    naming the variable when the explicit variables are incomplete or invalid.
    """
    environ = os.environ if environ is None else environ
    mode = environ.get(MODE_ENV, "").strip().lower()
    if mode not in ("", "auto", "off"):
        raise DistributedConfigError(f"{MODE_ENV}={mode!r} must be 'auto', 'off' or unset")
    if mode == "off":
        return None
    timeouts = {
        "heartbeat_timeout_seconds": _int_env(environ, HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S),
        "initialization_timeout": _int_env(environ, INIT_TIMEOUT_ENV, DEFAULT_INIT_TIMEOUT_S),
    }
    present = [name for name in EXPLICIT_ENV if environ.get(name, "") != ""]
    if not present:
        if mode == "auto" or _auto_cluster(environ):
            return dict(timeouts)  # JAX detects coordinator, process count and id itself
        return None
    missing = [name for name in EXPLICIT_ENV if name not in present]
    if missing:
        given = ", ".join(f"{name}={environ[name]}" for name in present)
        raise DistributedConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set, but {given} "
            f"{'is' if len(present) == 1 else 'are'}: a multi-process run needs all three of "
            f"{', '.join(EXPLICIT_ENV)} on every process (the same address and count everywhere, "
            f"ids 0..count-1). Fix: set {' and '.join(missing)}, or unset {', '.join(present)} for a "
            "single-process run."
        )
    address = environ[COORDINATOR_ENV]
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise DistributedConfigError(
            f"{COORDINATOR_ENV}={address!r} must be host:port of process 0, e.g. 10.0.0.2:12355"
        )
    num_processes = _int_env(environ, NUM_PROCESSES_ENV, 1)
    process_id = _int_env(environ, PROCESS_ID_ENV, 0, minimum=0)
    if process_id >= num_processes:
        raise DistributedConfigError(
            f"{PROCESS_ID_ENV}={process_id} must be below "
            f"{NUM_PROCESSES_ENV}={num_processes} (ids are 0..{num_processes - 1})"
        )
    return {"coordinator_address": address, "num_processes": num_processes, "process_id": process_id, **timeouts}


def is_initialized() -> bool:
    return jax.distributed.is_initialized()


def initialize_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Start JAX's distributed runtime when the environment describes a multi-process run.

    Must run before the first JAX computation (it is the first thing ``snnjax.launch`` does).
    Returns whether the runtime is running. Idempotent.
    """
    if is_initialized():
        return True
    settings = settings_from_env(environ)
    if settings is None:
        return False
    # Cross-process collectives of XLA:CPU go over TCP (gloo), so the same code runs as several
    # processes on one machine (the tests) or on CPU-only hosts. No effect on GPU/TPU.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**settings)
    return True


def process_index() -> int:
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()


def is_primary() -> bool:
    """True in the one process that writes logs, summaries and plots (process 0)."""
    return jax.process_index() == 0


def say(message: str) -> None:
    """A status line on stderr, from process 0 only."""
    if is_primary():
        print(message, file=sys.stderr, flush=True)


def sync(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (no-op for a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def broadcast_from_primary(value: Any) -> Any:
    """Process 0's ``value`` (a pytree of numbers/arrays) on every process.

    Use it for decisions read from the filesystem or the clock, so that every process takes the
    same branch (a divergent branch deadlocks the next collective).
    """
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return jax.tree.map(
        lambda x: x.item() if getattr(x, "ndim", 1) == 0 and hasattr(x, "item") else x,
        multihost_utils.broadcast_one_to_all(value),
    )


def describe() -> str:
    """``process i of n, k local devices of m`` for log lines."""
    return (
        f"process {jax.process_index()} of {jax.process_count()}, {jax.local_device_count()} local "
        f"devices of {jax.device_count()}"
    )


# Errors of a collective or of the coordination service when a peer process is gone.
_PEER_FAILURE_MARKERS = (
    "gloo",
    "connection closed",
    "connection reset",
    "socket closed",
    "unavailable",
    "heartbeat",
    "coordination service",
    "deadline_exceeded",
    "barrier",
)


def looks_like_lost_peer(err: BaseException) -> bool:
    """Whether ``err`` is the kind of error a dead peer causes (not a bug of this process)."""
    text = f"{type(err).__name__}: {err}".lower()
    return any(marker in text for marker in _PEER_FAILURE_MARKERS)


def lost_processes(wait_s: float, poll_s: float = 0.25) -> list[int] | None:
    """Ids of the processes the coordinator no longer hears from, waiting up to ``wait_s`` seconds.

    The coordinator declares a process lost after the heartbeat timeout, so a freshly dead peer
    shows up only then. Returns ``[0]`` when the coordinator (process 0) itself is unreachable,
    ``[]`` when every process is alive at the deadline, None outside a multi-process run.
    """
    from jax._src import distributed as jax_distributed

    client = jax_distributed.global_state.client
    if client is None or jax.process_count() == 1:
        return None
    everyone = list(range(jax.process_count()))
    deadline = time.monotonic() + wait_s
    while True:
        try:
            live = set(client.get_live_nodes(everyone))
        except Exception:  # the coordination service (on process 0) is gone
            return [0]
        lost = [i for i in everyone if i not in live]
        if lost or time.monotonic() >= deadline:
            return lost
        time.sleep(poll_s)


def heartbeat_timeout_s(environ: Mapping[str, str] | None = None) -> int:
    return _int_env(os.environ if environ is None else environ, HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S)


def exit_if_peer_lost(err: BaseException) -> None:
    """In a multi-process run, turn a failure caused by a dead peer into a clear message and exit 1.

    Called by the launcher on an uncaught error. Waits (at most the heartbeat timeout plus a few
    seconds) for the coordinator to name the lost process, prints it, and leaves at once: the
    orderly shutdown would wait for the lost process in vain. Returns (doing nothing) for
    single-process runs and for errors that are not about a peer.
    """
    if jax.process_count() == 1 or not looks_like_lost_peer(err):
        return
    me = f"process {jax.process_index()} of {jax.process_count()}"
    print(
        f"snnjax: {me}: a collective failed ({type(err).__name__}: {str(err).splitlines()[0][:300]}); "
        f"asking the coordinator which process is gone (up to {heartbeat_timeout_s()} s, "
        f"{HEARTBEAT_ENV})",
        file=sys.stderr,
        flush=True,
    )
    lost = lost_processes(heartbeat_timeout_s() + 5)
    if lost:
        names = ", ".join(str(i) for i in lost)
        what = "the coordinator, " if lost == [0] else ""
        print(
            f"snnjax: {me}: lost peer: process {what}{names} stopped responding; this process stops too. "
            "Restart every process with the same command and --workdir to resume from the last checkpoint.",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(f"snnjax: {me}: every process is still alive; the error above is the cause.", file=sys.stderr, flush=True)
        return
    sys.stderr.flush()
    os._exit(1)


def check_same_everywhere(name: str, text: str) -> None:
    """Fail on every process when ``text`` (e.g. the config) differs between processes."""
    if jax.process_count() == 1:
        return
    import hashlib

    import numpy as np
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(text.encode()).digest()[:8], dtype=np.int32).copy()
    every = np.asarray(multihost_utils.process_allgather(digest)).reshape(jax.process_count(), -1)
    differ = [i for i in range(len(every)) if not np.array_equal(every[i], every[0])]
    if differ:
        raise DistributedConfigError(
            f"process(es) {', '.join(map(str, differ))} have a different {name} than process 0. Fix: start "
            "every process with the same command line, config file and overrides."
        )
