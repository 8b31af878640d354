"""grain streaming: per-(seed, epoch) order, epoch coverage, resume, host sharding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from snnjax.data.streaming import batches_per_epoch, epoch_dataset, epoch_seed, iterate_batches

N, B = 23, 4  # 5 batches per epoch, 3 records dropped
SOURCE = [{"image": np.full((2, 2, 1), i, np.uint8), "label": np.int64(i % 5), "extra": i} for i in range(N)]


def _ids(batches) -> list[list[int]]:
    return [b["image"][:, 0, 0, 0].tolist() for b in batches]


def test_epoch_covers_distinct_examples_with_right_labels():
    batches = list(epoch_dataset(SOURCE, batch_size=B, seed=0, epoch=0))
    assert len(batches) == batches_per_epoch(N, B) == 5
    for b in batches:
        assert b["image"].shape == (B, 2, 2, 1) and b["image"].dtype == np.uint8
        assert b["label"].shape == (B,) and b["label"].dtype == np.int32
        np.testing.assert_array_equal(b["label"], b["image"][:, 0, 0, 0] % 5)
    ids = list(itertools.chain.from_iterable(_ids(batches)))
    assert len(set(ids)) == 20 and set(ids) <= set(range(N))


def test_order_is_deterministic_per_seed_and_epoch():
    def order(seed, epoch):
        return _ids(epoch_dataset(SOURCE, batch_size=B, seed=seed, epoch=epoch))

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    assert epoch_seed(0, 1) != epoch_seed(1, 0)


def test_iteration_resume_and_epoch_boundaries():
    full = _ids(iterate_batches(SOURCE, batch_size=B, seed=3, num_epochs=2, num_threads=2))
    assert len(full) == 10
    assert full[:5] == _ids(epoch_dataset(SOURCE, batch_size=B, seed=3, epoch=0))
    assert full[5:] == _ids(epoch_dataset(SOURCE, batch_size=B, seed=3, epoch=1))
    resumed = _ids(iterate_batches(SOURCE, batch_size=B, seed=3, start_step=7, num_epochs=2, num_threads=2))
    assert resumed == full[7:]
    endless = iterate_batches(SOURCE, batch_size=B, seed=3, start_step=9)
    assert [next(endless)["image"][:, 0, 0, 0].tolist() for _ in range(2)] == [
        full[9],
        _ids(epoch_dataset(SOURCE, batch_size=B, seed=3, epoch=2))[0],
    ]


def test_host_shards_are_disjoint_and_equal_length():
    shards = [
        _ids(epoch_dataset(SOURCE, batch_size=2, seed=0, epoch=0, shard_index=i, shard_count=3)) for i in range(3)
    ]
    # 23 -> 21 usable -> 7 per host -> 3 batches of 2 on every host.
    assert [len(s) for s in shards] == [3, 3, 3] == [batches_per_epoch(N, 2, shard_count=3)] * 3
    flat = [set(itertools.chain.from_iterable(s)) for s in shards]
    assert all(len(f) == 6 for f in flat)
    assert not (flat[0] & flat[1]) and not (flat[0] & flat[2]) and not (flat[1] & flat[2])


def test_bad_arguments():
    with pytest.raises(ValueError, match="shard_index=3"):
        epoch_dataset(SOURCE, batch_size=B, seed=0, epoch=0, shard_index=3, shard_count=3)
    with pytest.raises(ValueError, match=r"batch_size=30.*num_examples=23"):
        epoch_dataset(SOURCE, batch_size=30, seed=0, epoch=0)
    with pytest.raises(ValueError, match="start_step"):
        next(iterate_batches(SOURCE, batch_size=B, seed=0, start_step=-1))
