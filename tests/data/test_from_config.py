"""snnjax.data.from_config: the one place a run's data and its normalisation are chosen."""

import ml_collections
import numpy as np
import pytest

from snnjax import config as config_lib
from snnjax import data


def _data_cfg(**overrides):
    cfg = config_lib.data_config(name="synthetic")
    cfg.options = ml_collections.ConfigDict({"image_shape": (4, 4, 2), "num_train": 10, "num_test": 6})
    cfg.update(overrides)
    return cfg


def test_the_loaders_own_statistics_by_default():
    cfg = config_lib.data_config(name="digits")
    splits = data.load_from_config(cfg)
    images = splits.train.images.reshape(-1, 1).astype(np.float64) / 255
    np.testing.assert_allclose(splits.mean, images.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(splits.std, images.std(axis=0), rtol=1e-6)


@pytest.mark.parametrize("name, mean, std", [("symmetric", 0.5, 0.5), ("unit", 0.0, 1.0)])
def test_named_normalisations(name, mean, std):
    splits = data.load_from_config(_data_cfg(normalization=name))
    assert (splits.mean, splits.std) == ((mean, mean), (std, std))


def test_constants_win_over_the_name_and_are_checked_per_channel():
    splits = data.load_from_config(_data_cfg(normalization="symmetric", mean=(0.1, 0.2), std=(0.3, 0.4)))
    assert (splits.mean, splits.std) == ((0.1, 0.2), (0.3, 0.4))
    with pytest.raises(ValueError, match=r"config.data.mean=\(0.1,\) / std=\(0.3,\) need 2 values"):
        data.load_from_config(_data_cfg(mean=(0.1,), std=(0.3,)))
    with pytest.raises(ValueError, match="config.data.normalization='minmax'"):
        data.load_from_config(_data_cfg(normalization="minmax"))


def test_train_subset_is_applied():
    assert data.load_from_config(_data_cfg(train_subset=4)).train.num_examples == 4
