"""The embedded `digits` dataset: sizes, stratification, determinism, pixel values."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_load_digits

from snnjax.data import InvalidDatasetOptionError, load_dataset
from snnjax.data.digits import rescale_to_uint8, upsample_nearest


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_sizes_shapes_and_dtypes(digits):
    assert digits.name == "digits"
    assert digits.train.num_examples + digits.test.num_examples == 1797
    assert digits.test.num_examples == 360  # ceil(0.2 * 1797)
    assert digits.train.num_examples == 1437
    assert digits.train.images.shape == (1437, 8, 8, 1) and digits.train.images.dtype == np.uint8
    assert digits.test.labels.shape == (360,) and digits.test.labels.dtype == np.int32
    assert digits.image_shape == (8, 8, 1) and digits.num_classes == 10


def test_split_is_stratified(digits):
    total = np.bincount(np.concatenate([digits.train.labels, digits.test.labels]), minlength=10)
    test = np.bincount(digits.test.labels, minlength=10)
    train = np.bincount(digits.train.labels, minlength=10)
    assert np.all(np.abs(test - 0.2 * total) <= 1)
    assert np.all(np.abs(train - 0.8 * total) <= 1)


def test_split_is_deterministic(digits):
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.train.images, digits.train.images)
    np.testing.assert_array_equal(again.test.labels, digits.test.labels)
    assert again.mean == digits.mean and again.std == digits.std


def test_pixels_are_sklearn_values_times_255_over_16(digits):
    # 0 -> 0, 1 -> 15.94 -> 16, 8 -> 127.5 -> 128, 16 -> 255 (hand-computed).
    np.testing.assert_array_equal(rescale_to_uint8(np.array([0, 1, 8, 15, 16])), [0, 16, 128, 239, 255])
    source = sklearn_load_digits()
    expected = collections.Counter(
        (np.rint(img * 255 / 16).astype(np.uint8).tobytes(), int(y))
        for img, y in zip(source.images, source.target, strict=True)
    )
    got = collections.Counter(
        (img[..., 0].tobytes(), int(y))
        for split in (digits.train, digits.test)
        for img, y in zip(split.images, split.labels, strict=True)
    )
    assert got == expected  # train + test is exactly the whole dataset, each example once


def test_mean_std_are_train_statistics(digits):
    pixels = digits.train.images.astype(np.float64) / 255
    assert digits.mean == pytest.approx((pixels.mean(),), rel=1e-12)
    assert digits.std == pytest.approx((pixels.std(),), rel=1e-12)


def test_size_option_upsamples_by_nearest_neighbour(digits):
    big = load_dataset("digits", size=16)
    assert big.train.images.shape == (1437, 16, 16, 1)
    np.testing.assert_array_equal(big.train.images, digits.train.images.repeat(2, axis=1).repeat(2, axis=2))
    np.testing.assert_array_equal(big.test.labels, digits.test.labels)


def test_upsample_non_integer_factor_picks_floor_rows():
    image = np.arange(64, dtype=np.uint8).reshape(1, 8, 8, 1)
    out = upsample_nearest(image, 12)
    rows = [0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7]  # floor(r * 8 / 12), by hand
    np.testing.assert_array_equal(out[0, :, :, 0], image[0, rows][:, rows, 0])


@pytest.mark.parametrize("size", [0, -8, 2.5, True])
def test_bad_size_is_rejected(size):
    with pytest.raises(InvalidDatasetOptionError, match="size"):
        load_dataset("digits", size=size)
