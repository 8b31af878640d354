"""Placing a split on the device(s)."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from snnjax.data import ArrayDataset, dataset_bytes, put_dataset


def _ds() -> ArrayDataset:
    images = np.arange(10 * 8 * 8, dtype=np.int64).reshape(10, 8, 8, 1).astype(np.uint8)
    return ArrayDataset(images, np.arange(10, dtype=np.int32), 10)


def test_dataset_bytes_by_hand():
    assert dataset_bytes(_ds()) == 10 * 8 * 8 * 1 + 10 * 4  # uint8 pixels + int32 labels = 680


def test_put_on_default_device_keeps_dtypes_and_values():
    images, labels = put_dataset(_ds(), None)
    assert images.dtype == np.uint8 and labels.dtype == np.int32
    np.testing.assert_array_equal(images, _ds().images)
    np.testing.assert_array_equal(labels, _ds().labels)


def test_put_replicated_over_all_devices():
    mesh = Mesh(np.array(jax.devices()), ("data",))
    images, labels = put_dataset(_ds(), NamedSharding(mesh, PartitionSpec()))
    assert images.sharding.is_fully_replicated and labels.sharding.is_fully_replicated
    assert len(images.addressable_shards) == jax.device_count()
    assert all(s.data.shape == (10, 8, 8, 1) for s in images.addressable_shards)
    np.testing.assert_array_equal(labels, np.arange(10))
