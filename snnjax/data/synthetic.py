"""A synthetic, learnable image dataset for smoke tests and benchmarks.

Each class has a fixed random prototype image; an example is its class
prototype plus Gaussian pixel noise. A model can therefore learn the labels
(a smoke run shows accuracy rising above chance) while shapes and sizes are
free, e.g. CIFAR-shaped batches without the CIFAR download.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from snnjax.data.errors import InvalidDatasetOptionError
from snnjax.data.types import ArrayDataset, DatasetSplits

NOISE_STD = 48.0  # in pixel units (0..255): large enough to overlap classes, small enough to learn


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidDatasetOptionError(f"synthetic option {name}={value!r} is invalid; pass a positive int.")
    return int(value)


def _sample_split(rng: np.random.Generator, prototypes: np.ndarray, num_examples: int) -> ArrayDataset:
    """Draw labels uniformly and images as prototype + N(0, NOISE_STD) noise, clipped to 0..255."""
    num_classes = prototypes.shape[0]
    labels = rng.integers(0, num_classes, size=num_examples).astype(np.int32)
    noise = rng.normal(0.0, NOISE_STD, size=(num_examples, *prototypes.shape[1:]))
    images = np.clip(np.rint(prototypes[labels] + noise), 0, 255).astype(np.uint8)
    return ArrayDataset(images, labels, num_classes)


def load_synthetic(
    *,
    image_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    num_train: int = 512,
    num_test: int = 128,
    seed: int = 0,
) -> DatasetSplits:
    """Generate a deterministic learnable dataset of uint8 [N, H, W, C] images.

    Args:
      image_shape: (H, W, C) of each image.
      num_classes: number of classes (one prototype each).
      num_train, num_test: examples per split.
      seed: NumPy seed; the same seed gives the same arrays.

    Returns:
      DatasetSplits "synthetic" with mean = std = 0.5 per channel (so normalised
      pixels lie in [-1, 1]).
    """
    shape = tuple(image_shape)
    if len(shape) != 3:
        raise InvalidDatasetOptionError(
            f"synthetic option image_shape={image_shape!r} is invalid; pass (H, W, C), e.g. (32, 32, 3)."
        )
    shape = tuple(_positive_int("image_shape", d) for d in shape)
    num_classes = _positive_int("num_classes", num_classes)
    num_train = _positive_int("num_train", num_train)
    num_test = _positive_int("num_test", num_test)
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0.0, 255.0, size=(num_classes, *shape))
    train = _sample_split(rng, prototypes, num_train)
    test = _sample_split(rng, prototypes, num_test)
    channels = shape[-1]
    return DatasetSplits("synthetic", train, test, (0.5,) * channels, (0.5,) * channels)
