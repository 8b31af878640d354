"""In-memory dataset containers shared by every loader and the training engine.

Images are kept as raw uint8 pixels ([N, H, W, C], 0..255): that is 4x smaller
than float32 on the device, and normalisation happens inside the jitted step
(`snnjax.data.batches.normalize`) after zero-padding, as torchvision does it.
Event (dynamic) datasets use the same containers with uint8 [N, T, H, W, C]
event frames (C = 2 polarity channels, see `snnjax.data.events`).
"""

from __future__ import annotations

import dataclasses

import numpy as np


# eq=False: NumPy arrays have no single truth value, so a generated __eq__
# would raise; identity comparison is what a container of arrays can offer.
@dataclasses.dataclass(frozen=True, eq=False)
class ArrayDataset:
    """One split held in host memory.

    Attributes:
      images: uint8 [N, H, W, C], raw pixels in 0..255 (not normalised), or
        uint8 [N, T, H, W, C] event frames (counts per time bin, pixel and polarity).
      labels: int32 [N], class ids in [0, num_classes).
      num_classes: number of classes of the task (not only those present).
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        if not isinstance(self.images, np.ndarray) or self.images.dtype != np.uint8:
            raise TypeError(
                f"ArrayDataset.images must be a uint8 NumPy array, got "
                f"{type(self.images).__name__} of dtype {getattr(self.images, 'dtype', None)}; "
                "convert raw pixels with np.asarray(x, np.uint8) (do not normalise them)."
            )
        if self.images.ndim not in (4, 5):
            raise ValueError(
                f"ArrayDataset.images must have shape [N, H, W, C] (or [N, T, H, W, C] for event "
                f"frames), got {self.images.shape}; add a channel axis to grayscale images with "
                "images[..., None]."
            )
        if not isinstance(self.labels, np.ndarray) or self.labels.dtype != np.int32:
            raise TypeError(
                f"ArrayDataset.labels must be an int32 NumPy array, got dtype "
                f"{getattr(self.labels, 'dtype', None)}; convert with np.asarray(y, np.int32)."
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"ArrayDataset.labels must have shape [N] = ({self.images.shape[0]},) to match "
                f"images {self.images.shape}, got {self.labels.shape}."
            )
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"ArrayDataset.num_classes must be a positive int, got {self.num_classes!r}.")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ValueError(
                f"ArrayDataset.labels must lie in [0, {self.num_classes}), got range "
                f"[{self.labels.min()}, {self.labels.max()}]; pass the right num_classes."
            )

    @property
    def num_examples(self) -> int:
        """N, the number of examples."""
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(H, W, C) of one image, or (T, H, W, C) of one event sample."""
        return tuple(int(d) for d in self.images.shape[1:])


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A named train/test pair plus the per-channel normalisation statistics.

    Attributes:
      name: dataset name as given to `load_dataset` (e.g. "cifar10").
      train, test: the two splits; same image shape and num_classes.
      mean, std: per-channel statistics, length C, on the [0, 1] pixel scale
        (i.e. of `images / 255`), used as `(x / 255 - mean) / std`.
    """

    name: str
    train: ArrayDataset
    test: ArrayDataset
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.train.image_shape != self.test.image_shape:
            raise ValueError(
                f"DatasetSplits {self.name!r}: train images are {self.train.image_shape} but "
                f"test images are {self.test.image_shape}; both splits must share (H, W, C)."
            )
        if self.train.num_classes != self.test.num_classes:
            raise ValueError(
                f"DatasetSplits {self.name!r}: train has num_classes={self.train.num_classes} but "
                f"test has {self.test.num_classes}; both splits must use the same label space."
            )
        channels = self.train.image_shape[-1]
        for field, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != channels:
                raise ValueError(
                    f"DatasetSplits {self.name!r}: {field} has {len(values)} values but images "
                    f"have C={channels} channels; give one value per channel."
                )
        if any(not s > 0 for s in self.std):
            raise ValueError(f"DatasetSplits {self.name!r}: std must be > 0 per channel, got {self.std}.")

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(H, W, C) of one image, or (T, H, W, C) of one event sample."""
        return self.train.image_shape

    @property
    def num_classes(self) -> int:
        """Number of classes of the task."""
        return self.train.num_classes
