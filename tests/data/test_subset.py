"""Fixed stratified training subsets (config.data.train_subset)."""

import numpy as np
import pytest

from snnjax import data


def _splits(labels):
    labels = np.asarray(labels, np.int32)
    images = np.arange(labels.size, dtype=np.uint8).reshape(-1, 1, 1, 1)
    train = data.ArrayDataset(images, labels, 3)
    test = data.ArrayDataset(images[:3], labels[:3], 3)
    return data.DatasetSplits("toy", train, test, (0.5,), (0.25,))


def test_quota_by_hand_largest_remainder():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)  # proportions .5/.3/.2
    idx = data.stratified_subset(labels, 4, 3)
    # exact quotas 2.0 / 1.2 / 0.8 -> floors 2/1/0, one left goes to class 2 (fraction .8 > .2)
    np.testing.assert_array_equal(np.bincount(labels[idx], minlength=3), [2, 1, 1])
    assert np.all(np.diff(idx) > 0)


def test_subset_is_fixed_and_independent_of_anything_but_its_seed():
    labels = np.repeat(np.arange(3), 50)
    a, b = data.stratified_subset(labels, 30, 3), data.stratified_subset(labels, 30, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.bincount(labels[a]), [10, 10, 10])
    assert not np.array_equal(a, data.stratified_subset(labels, 30, 3, seed=1))


def test_take_train_subset_keeps_test_split_and_statistics():
    splits = _splits(np.repeat(np.arange(3), 4))
    sub = data.take_train_subset(splits, 6)
    assert sub.train.num_examples == 6 and sub.test is splits.test
    assert (sub.mean, sub.std) == (splits.mean, splits.std)
    np.testing.assert_array_equal(splits.train.labels[sub.train.images[:, 0, 0, 0]], sub.train.labels)
    assert data.take_train_subset(splits, 0) is splits


@pytest.mark.parametrize("size", [-1, 13, 2.5, True])
def test_bad_subset_size_names_the_key(size):
    with pytest.raises(data.InvalidDatasetOptionError, match="train_subset"):
        data.stratified_subset(np.zeros(12, np.int32), size, 3)
