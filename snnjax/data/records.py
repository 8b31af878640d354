"""Turning one decoded tfds record (a dict of NumPy values) into an (image, label) example.

Used by the in-memory tfds loader (`snnjax.data.tfds_source`); streamed record sets are read by
`snnjax.data.stream_source`, which decodes encoded images on the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from snnjax.data.errors import DatasetCorruptError, InvalidDatasetOptionError


def to_example(record: Mapping[str, Any], image_key: str, label_key: str) -> dict[str, np.ndarray]:
    """Pick and check the image and label of a record.

    Args:
      record: a decoded tfds example, e.g. {"image": uint8 [H, W, C], "label": int}.
      image_key, label_key: which entries hold the image and the class id.

    Returns:
      {"image": uint8 [H, W, C], "label": int32 []}; a [H, W] image gets C = 1.
    """
    for option, key in (("image_key", image_key), ("label_key", label_key)):
        if key not in record:
            raise InvalidDatasetOptionError(
                f"tfds records have no {key!r} entry (option {option}); available keys: "
                f"{sorted(record)}. Fix: pass {option}=<one of them>."
            )
    image = np.asarray(record[image_key])
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8 or image.ndim != 3:
        raise DatasetCorruptError(
            f"tfds entry {image_key!r} must be a uint8 image [H, W] or [H, W, C], got "
            f"{image.dtype}{list(image.shape)}. Fix: choose an image feature with image_key=..."
        )
    label = np.asarray(record[label_key])
    if label.shape != () or not np.issubdtype(label.dtype, np.integer):
        raise DatasetCorruptError(
            f"tfds entry {label_key!r} must be a scalar integer class id, got "
            f"{label.dtype}{list(label.shape)}. Fix: choose a ClassLabel feature with label_key=..."
        )
    return {"image": image, "label": label.astype(np.int32)}
