"""Dataset containers' validation and `load_dataset` name/option handling."""

from __future__ import annotations

import numpy as np
import pytest

from snnjax.data import (
    ArrayDataset,
    DatasetSplits,
    InvalidDatasetOptionError,
    UnknownDatasetError,
    dataset_names,
    load_dataset,
)


def _ds(n=4, h=2, w=3, c=1, num_classes=3) -> ArrayDataset:
    return ArrayDataset(np.zeros((n, h, w, c), np.uint8), np.arange(n, dtype=np.int32) % num_classes, num_classes)


def test_properties():
    ds = _ds()
    assert ds.num_examples == 4 and ds.image_shape == (2, 3, 1)
    splits = DatasetSplits("x", ds, _ds(n=2), (0.1,), (0.2,))
    assert splits.image_shape == (2, 3, 1) and splits.num_classes == 3


def test_array_dataset_rejects_bad_arrays():
    with pytest.raises(TypeError, match="uint8"):
        ArrayDataset(np.zeros((2, 2, 2, 1), np.float32), np.zeros(2, np.int32), 2)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        ArrayDataset(np.zeros((2, 2, 2), np.uint8), np.zeros(2, np.int32), 2)
    with pytest.raises(TypeError, match="int32"):
        ArrayDataset(np.zeros((2, 2, 2, 1), np.uint8), np.zeros(2, np.int64), 2)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        ArrayDataset(np.zeros((2, 2, 2, 1), np.uint8), np.zeros(3, np.int32), 2)
    with pytest.raises(ValueError, match=r"\[0, 2\).*\[0, 5\]"):
        ArrayDataset(np.zeros((2, 2, 2, 1), np.uint8), np.array([0, 5], np.int32), 2)


def test_splits_reject_mismatches():
    with pytest.raises(ValueError, match="C=1"):
        DatasetSplits("x", _ds(), _ds(), (0.5, 0.5, 0.5), (0.5,))
    with pytest.raises(ValueError, match=r"\(2, 3, 1\).*\(2, 2, 1\)"):
        DatasetSplits("x", _ds(), _ds(w=2), (0.5,), (0.5,))
    with pytest.raises(ValueError, match="num_classes"):
        DatasetSplits("x", _ds(), _ds(num_classes=4), (0.5,), (0.5,))
    with pytest.raises(ValueError, match="std"):
        DatasetSplits("x", _ds(), _ds(), (0.5,), (0.0,))


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownDatasetError) as info:
        load_dataset("cifar11")
    assert isinstance(info.value, ValueError)
    for name in ("digits", "synthetic", "cifar10", "cifar100", "tfds:"):
        assert name in str(info.value)
    assert dataset_names()[:4] == ["digits", "synthetic", "cifar10", "cifar100"]


def test_unknown_option_names_option_and_valid_ones():
    with pytest.raises(InvalidDatasetOptionError, match=r"'sise'.*\['size'\]"):
        load_dataset("digits", sise=16)
    with pytest.raises(InvalidDatasetOptionError, match="label_type"):
        load_dataset("cifar10", label_type="coarse")
