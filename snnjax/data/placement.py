"""Putting an in-memory split on the accelerator(s).

A small dataset is placed once (typically replicated on every device), then
`snnjax.data.batches` gathers batches from it inside the jitted step.
"""

from __future__ import annotations

import jax

from snnjax.data.types import ArrayDataset


def dataset_bytes(ds: ArrayDataset) -> int:
    """Bytes the split occupies per copy: uint8 images + int32 labels (CIFAR-10 train: 153,800,000)."""
    return int(ds.images.nbytes + ds.labels.nbytes)


def put_dataset(ds: ArrayDataset, sharding: jax.sharding.Sharding | None = None) -> tuple[jax.Array, jax.Array]:
    """Copy a split to the device(s), keeping uint8 images and int32 labels.

    Args:
      ds: the split, images uint8 [N, H, W, C], labels int32 [N].
      sharding: where to put both arrays, usually replicated, e.g.
        `NamedSharding(mesh, PartitionSpec())`; None means the default device.
        Multi-host: every process must pass the same (deterministically loaded) data.

    Returns:
      (images uint8 [N, H, W, C], labels int32 [N]) as jax.Arrays.
    """
    # Pixels stay uint8 on the device (4x smaller than float32); normalisation is per batch.
    return jax.device_put(ds.images, sharding), jax.device_put(ds.labels, sharding)
