"""The synthetic dataset: shapes, determinism, and that its labels are learnable."""

from __future__ import annotations

import numpy as np
import pytest

from snnjax.data import InvalidDatasetOptionError, load_dataset


def test_defaults():
    splits = load_dataset("synthetic")
    assert splits.train.images.shape == (512, 32, 32, 3) and splits.train.images.dtype == np.uint8
    assert splits.test.images.shape == (128, 32, 32, 3)
    assert splits.train.labels.dtype == np.int32 and splits.num_classes == 10
    assert splits.mean == (0.5, 0.5, 0.5) and splits.std == (0.5, 0.5, 0.5)
    assert set(np.unique(splits.train.labels)) == set(range(10))


def test_options_and_determinism():
    a = load_dataset("synthetic", image_shape=(8, 6, 1), num_classes=3, num_train=20, num_test=7, seed=5)
    b = load_dataset("synthetic", image_shape=(8, 6, 1), num_classes=3, num_train=20, num_test=7, seed=5)
    c = load_dataset("synthetic", image_shape=(8, 6, 1), num_classes=3, num_train=20, num_test=7, seed=6)
    assert a.image_shape == (8, 6, 1) and a.num_classes == 3 and a.mean == (0.5,)
    assert a.train.num_examples == 20 and a.test.num_examples == 7
    np.testing.assert_array_equal(a.train.images, b.train.images)
    np.testing.assert_array_equal(a.test.labels, b.test.labels)
    assert not np.array_equal(a.train.images, c.train.images)


def test_labels_are_learnable_by_nearest_class_mean():
    splits = load_dataset("synthetic", image_shape=(8, 8, 3), num_train=256, num_test=128)
    x_train = splits.train.images.reshape(256, -1).astype(np.float64)
    x_test = splits.test.images.reshape(128, -1).astype(np.float64)
    centroids = np.stack([x_train[splits.train.labels == k].mean(0) for k in range(10)])
    predicted = np.argmin(((x_test[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == splits.test.labels).mean() > 0.9  # chance is 0.1


@pytest.mark.parametrize("options", [{"image_shape": (32, 32)}, {"num_classes": 0}, {"num_train": -1}])
def test_bad_options(options):
    with pytest.raises(InvalidDatasetOptionError, match="synthetic option"):
        load_dataset("synthetic", **options)
