"""Records streamed off disk (``config.data.streaming``): their batches as global arrays on the mesh.

:func:`snnjax.data.from_records.load` gives a :class:`snnjax.data.stream_source.RecordSet` instead of
in-memory splits when ``config.data`` streams; its :class:`~snnjax.data.stream_source.StreamSource`
yields this process's slice of each global batch as NumPy arrays. This module turns those slices into
batch-sharded global arrays (``jax.make_array_from_process_local_data``): every training step's batch,
with ``PREFETCH`` batches already on the devices (:func:`device_batches`), and every test batch
(:func:`eval_batches`). What the device does with them (crop, flip, normalise) is the streamed backend
of :mod:`snnjax.train.inputs`, next to the resident one it must equal.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import jax
import numpy as np
from jax.sharding import Mesh

from snnjax.data.stream_source import StreamSource
from snnjax.train import mesh as mesh_lib

PREFETCH = 2  # global batches transferred to the devices ahead of the step that uses them


def global_array(local: np.ndarray, mesh: Mesh) -> jax.Array:
    """One batch-sharded global array from this process's slice ``[B / process_count, ...]``."""
    return jax.make_array_from_process_local_data(mesh_lib.batch_sharded(mesh), local)


def device_batches(source: StreamSource, start_step: int, mesh: Mesh) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Global (images uint8 [B, H, W, C], labels int32 [B]) of every step from ``start_step`` on."""
    queue: collections.deque = collections.deque()
    for batch in source.train_batches(start_step):
        queue.append((global_array(batch["image"], mesh), global_array(batch["label"], mesh)))
        if len(queue) > PREFETCH:
            yield queue.popleft()


def eval_batches(source: StreamSource, mesh: Mesh) -> Iterator[tuple[jax.Array, jax.Array, jax.Array]]:
    """Global (images uint8 [B, H, W, C], labels int32 [B], mask bool [B]) of one pass over the test
    split, B = ``source.eval_batch_size``; ``mask`` is False on the padding of the last batch."""
    for batch, mask in source.eval_batches():
        yield tuple(global_array(a, mesh) for a in (batch["image"], batch["label"], mask))
