"""The embedded `digits` dataset: scikit-learn's 1,797 real 8x8 handwritten digits.

It ships inside scikit-learn (no network), so every pipeline has a real dataset
that runs offline in minutes on a CPU. Pixels are 0..16 in the source and are
rescaled to uint8 0..255 here so that all datasets share one pixel convention.
"""

from __future__ import annotations

import numpy as np

from snnjax.data.errors import InvalidDatasetOptionError
from snnjax.data.stats import channel_stats
from snnjax.data.types import ArrayDataset, DatasetSplits

NUM_EXAMPLES = 1797
NUM_CLASSES = 10
SOURCE_SIZE = 8
SOURCE_MAX = 16  # sklearn's digits count "on" pixels in 4x4 blocks: values 0..16
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed: the split is part of the dataset definition, not a knob


def rescale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map digit intensities 0..16 to uint8 0..255 by `round(v * 255 / 16)`."""
    return np.rint(np.asarray(values, np.float64) * (255.0 / SOURCE_MAX)).astype(np.uint8)


def upsample_nearest(images: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of [N, H, W, C] images to [N, size, size, C].

    Source pixel of output row r is `r * H // size` (and likewise for columns),
    so an integer factor is an exact pixel repeat.
    """
    rows = (np.arange(size) * images.shape[1]) // size
    cols = (np.arange(size) * images.shape[2]) // size
    return images[:, rows][:, :, cols]


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of a stratified random split; same result for the same seed."""
    from sklearn.model_selection import train_test_split  # lazy: sklearn import is slow

    indices = np.arange(labels.shape[0])
    train_idx, test_idx = train_test_split(
        indices, test_size=test_fraction, stratify=labels, random_state=seed, shuffle=True
    )
    return np.asarray(train_idx), np.asarray(test_idx)


def load_digits(*, size: int = SOURCE_SIZE) -> DatasetSplits:
    """Load `digits` as uint8 [N, size, size, 1] images with a fixed stratified split.

    Args:
      size: output height = width in pixels (>= 1); 8 is the native size, larger
        values upsample by nearest neighbour (e.g. 16 or 32 for CIFAR-shaped models).

    Returns:
      DatasetSplits "digits": 1,437 train / 360 test examples, 10 classes, and the
      train split's mean/std on the [0, 1] scale (1 channel).
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidDatasetOptionError(
            f"digits option size={size!r} is invalid; pass a positive int such as 8, 16 or 32."
        )
    bunch = sklearn_load_digits()
    images = rescale_to_uint8(bunch.images)[..., None]
    if size != SOURCE_SIZE:
        images = upsample_nearest(images, size)
    labels = np.asarray(bunch.target, np.int32)
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    train = ArrayDataset(images[train_idx], labels[train_idx], NUM_CLASSES)
    test = ArrayDataset(images[test_idx], labels[test_idx], NUM_CLASSES)
    mean, std = channel_stats(train.images)
    return DatasetSplits("digits", train, test, mean, std)
