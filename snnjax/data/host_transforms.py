"""Host-side image decoding and geometric augmentation for streamed datasets, as grain map functions.

Records hold encoded images (JPEG/PNG bytes, as written by :mod:`snnjax.data.write_records` or
tfds' ``imagenet2012`` read with ``SkipDecoding``) or already decoded uint8 arrays. Each transform
turns one into a fixed-size uint8 image ``[S, S, C]`` (pixels 0..255, not normalised:
normalisation stays on the device, :func:`snnjax.data.batches.normalize`):

- ``decode``: decode only; every image must already have the dataset's size (Fashion-MNIST,
  CIFAR as records). Padding crop and flip then happen on the device as for in-memory data.
- ``random_resized_crop``: torchvision's ``RandomResizedCrop(S, scale=(0.08, 1), ratio=(3/4, 4/3))``
  then ``RandomHorizontalFlip()`` (the ImageNet training recipe).
- ``resize_center_crop``: ``Resize(R)`` of the shorter side then ``CenterCrop(S)`` with R = S / 0.875
  (256 for 224: the ImageNet evaluation recipe), done as one resampling of the crop's box.

Randomness comes from ``example_rng(seed, epoch, index)`` (index: the record's position in the
split), so the augmented example, and therefore the batch at any (epoch, position), is a pure
function of the seed whatever the number of worker threads or processes.

JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still leaves the crop at least S
pixels wide and high (PIL ``draft``): the same pixels reach the resampler at a fraction of the cost.
"""

from __future__ import annotations

import dataclasses
import io
import math
from typing import Any

import numpy as np

from snnjax.data.errors import DatasetCorruptError, InvalidDatasetOptionError

KINDS = ("decode", "random_resized_crop", "resize_center_crop")
EVAL_CROP_FRACTION = 0.875  # 224 / 256, the ImageNet evaluation recipe
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)

Box = tuple[int, int, int, int]  # (left, top, width, height) in pixels of the full-size image


def example_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one example's augmentation: independent across (seed, epoch, index)."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def random_resized_crop_box(
    rng: np.random.Generator,
    width: int,
    height: int,
    scale: tuple[float, float] = RRC_SCALE,
    ratio: tuple[float, float] = RRC_RATIO,
) -> Box:
    """torchvision ``RandomResizedCrop.get_params``: area share in ``scale``, aspect (w/h) log-uniform in ``ratio``.

    Ten tries at a box inside the image, then the largest central box whose aspect lies in ``ratio``.
    """
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def center_crop_box(width: int, height: int, size: int, resize_size: int) -> tuple[float, float, float, float]:
    """The box of the full-size image that ``Resize(resize_size)`` then ``CenterCrop(size)`` keeps.

    Returns (left, top, right, bottom) in full-size pixels (fractional: PIL resamples the box exactly).
    """
    factor = resize_size / min(width, height)  # full-size pixels -> resized pixels
    side = size / factor
    left, top = (width - side) / 2.0, (height - side) / 2.0
    return left, top, left + side, top + side


def _mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def open_image(image: Any, channels: int):
    """A PIL image (not yet decoded when ``image`` is encoded bytes) from bytes or a uint8 array [H, W(, C)]."""
    from PIL import Image

    if isinstance(image, bytes | bytearray | memoryview):
        return Image.open(io.BytesIO(image))
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(array.astype(np.uint8, copy=False))


def _to_array(image, channels: int) -> np.ndarray:
    if image.mode != _mode(channels):
        image = image.convert(_mode(channels))
    array = np.asarray(image, np.uint8)
    return array[..., None] if array.ndim == 2 else array


def _draft(image, channels: int, box: tuple[float, float, float, float], size: int) -> tuple[float, ...]:
    """Let PIL decode a JPEG at a reduced scale that keeps ``box`` >= size pixels; returns the box rescaled."""
    full_w, full_h = image.size
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    request = (math.ceil(full_w * size / max(box_w, 1e-6)), math.ceil(full_h * size / max(box_h, 1e-6)))
    if image.format == "JPEG" and request[0] < full_w and request[1] < full_h:
        image.draft(_mode(channels), request)
    sx, sy = image.size[0] / full_w, image.size[1] / full_h
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


@dataclasses.dataclass(frozen=True)
class HostTransform:
    """One record image -> uint8 [S, S, C] (``decode``: [H, W, C] as stored).

    Attributes:
      kind: one of ``KINDS``.
      size: output side S in pixels (ignored by ``decode``).
      channels: 1 (grayscale) or 3 (RGB): what every image is converted to.
      flip: ``random_resized_crop`` mirrors left-right with probability 0.5.
      image_shape: ``decode`` only: the [H, W, C] every image must have (None: not checked).
    """

    kind: str
    size: int = 224
    channels: int = 3
    flip: bool = True
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidDatasetOptionError(f"host transform {self.kind!r} is unknown; choose one of {KINDS}.")
        if self.channels not in (1, 3):
            raise InvalidDatasetOptionError(f"host transform channels={self.channels} must be 1 or 3.")
        if self.kind != "decode" and self.size < 1:
            raise InvalidDatasetOptionError(f"host transform size={self.size} must be >= 1 pixel.")

    @property
    def needs_rng(self) -> bool:
        return self.kind == "random_resized_crop"

    def output_shape(self, stored_shape: tuple[int, int, int] | None = None) -> tuple[int, int, int]:
        """[H, W, C] of every transformed image (``decode``: the stored shape)."""
        if self.kind == "decode":
            shape = self.image_shape or stored_shape
            if shape is None:
                raise InvalidDatasetOptionError("host transform 'decode' needs the stored image_shape.")
            return tuple(shape)
        return (self.size, self.size, self.channels)

    def __call__(self, image: Any, rng: np.random.Generator | None = None, *, where: str = "") -> np.ndarray:
        """Transform one record's image; ``where`` names the record in errors ("train record 17")."""
        from PIL import Image, UnidentifiedImageError

        try:
            pil = open_image(image, self.channels)
            if self.kind == "decode":
                out = _to_array(pil, self.channels)
                if self.image_shape is not None and out.shape != tuple(self.image_shape):
                    raise DatasetCorruptError(
                        f"{where or 'an image'} decodes to {list(out.shape)}, not the dataset's "
                        f"{list(self.image_shape)}. Fix: use the random_resized_crop/resize_center_crop "
                        "host transforms for images of varying size."
                    )
                return out
            width, height = pil.size
            if self.kind == "random_resized_crop":
                if rng is None:
                    raise ValueError("random_resized_crop needs an rng (example_rng(seed, epoch, index)).")
                left, top, w, h = random_resized_crop_box(rng, width, height)
                box = (float(left), float(top), float(left + w), float(top + h))
                mirror = self.flip and bool(rng.random() < 0.5)
            else:
                box = center_crop_box(width, height, self.size, round(self.size / EVAL_CROP_FRACTION))
                mirror = False
            box = _draft(pil, self.channels, box, self.size)
            if pil.mode != _mode(self.channels):
                pil = pil.convert(_mode(self.channels))
            out_image = pil.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)
            if mirror:
                out_image = out_image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            return _to_array(out_image, self.channels)
        except (OSError, UnidentifiedImageError, SyntaxError) as e:
            raise DatasetCorruptError(
                f"cannot decode {where or 'an image'} ({type(e).__name__}: {e}). Fix: rewrite that record."
            ) from None
