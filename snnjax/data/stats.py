"""Per-channel pixel statistics used for input normalisation."""

from __future__ import annotations

import numpy as np


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images on the [0, 1] scale.

    Args:
      images: uint8 [N, H, W, C].

    Returns:
      (mean, std), each a tuple of C floats, of `images / 255`.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"channel_stats needs a non-empty [N, H, W, C] array, got shape {images.shape}.")
    # float64 accumulation: a float32 sum over 50k*32*32 pixels loses digits.
    scaled = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    mean = scaled.mean(axis=0)
    std = scaled.std(axis=0)
    # A constant channel would divide by zero at normalisation time; 1.0 leaves it centred.
    std = np.where(std > 0, std, 1.0)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


# ``config.data.normalization`` -> per-channel (mean, std) on the [0, 1] pixel scale; None = the
# dataset's own statistics (the default). Poisson input coding (hybrid conversion) needs |x| <= 1.
NORMALIZATIONS: dict[str, tuple[float, float] | None] = {"symmetric": (0.5, 0.5), "unit": (0.0, 1.0), "dataset": None}
