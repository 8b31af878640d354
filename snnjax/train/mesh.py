"""Device mesh and shardings for data parallelism over every device of every host.

The batch axis is sharded over the mesh axis ``"data"``; parameters and optimizer state are
replicated. Under ``jax.jit`` with these shardings XLA inserts the gradient all-reduce itself and
BatchNorm statistics are global (computed over the whole sharded batch), so one sharded step
equals the single-device step on the same global batch.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over ``devices`` (default: all devices of all hosts)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over ``"data"``; other axes whole."""
    return NamedSharding(mesh, P(DATA_AXIS))


def batch_for_devices(batch_size: int, n_devices: int) -> int:
    """``batch_size`` rounded down to a multiple of ``n_devices``, at least ``n_devices``: the one
    rounding of a global batch (examples) that the devices split evenly, e.g. the test batch."""
    return max(n_devices, int(batch_size) // n_devices * n_devices)


def check_batch_size(batch_size: int, mesh: Mesh, key: str = "config.data.batch_size") -> None:
    """Fail early, with the fix, when the global batch cannot be split evenly over the devices."""
    n = mesh.devices.size
    if batch_size < 1 or batch_size % n:
        raise ValueError(
            f"{key}={batch_size} must be a positive multiple of the device count {n}; "
            f"use e.g. {batch_for_devices(batch_size, n)}"
        )
