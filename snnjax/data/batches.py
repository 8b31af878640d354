"""The batches of a run on the device: batch order, augmentation and normalisation as pure JAX functions.

Small datasets (CIFAR is 150 MB as uint8) live on the device; every train step
gathers its batch, augments it and normalises it inside the jitted step, so
the host never stalls the accelerator. Everything here is a pure function of
(PRNG key, step), hence jit-able with a traced step, and a run resumed at step
k sees exactly the batches an uninterrupted run would have seen.

Augmentation matches torchvision's `RandomCrop(32, padding=4)`,
`RandomHorizontalFlip()`, then `Normalize(mean, std)`: the zero padding is added
to the raw uint8 pixels, so padded pixels become `-mean / std` after normalising.

Shapes: images [B, H, W, C] (uint8 unless stated), labels int32 [B]. Event
frames [B, T, H, W, C] go through the same functions: every time step of an
example gets the same crop and flip (a shifted sensor, not jittered frames).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

IntLike = int | jax.Array


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full batches per epoch, dropping the remainder: `num_examples // batch_size`.

    Raises ValueError if that is 0 (or the sizes are not positive), naming both numbers.
    """
    num_examples, batch_size = operator.index(num_examples), operator.index(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if num_examples < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds the dataset's num_examples={num_examples}, so an epoch "
            f"has 0 full batches. Fix: use batch_size <= {num_examples} or a larger dataset."
        )
    return num_examples // batch_size


def epoch_permutation(key: jax.Array, epoch: IntLike, num_examples: int) -> jax.Array:
    """The example order of one epoch: int32 [N], a permutation of 0..N-1.

    Deterministic per (key, epoch); `epoch` may be traced.
    """
    return jax.random.permutation(jax.random.fold_in(key, epoch), num_examples).astype(jnp.int32)


def batch_indices(key: jax.Array, step: IntLike, num_examples: int, batch_size: int) -> jax.Array:
    """Example indices of global step `step`: int32 [B].

    Step s is batch `s % steps_per_epoch` of epoch `s // steps_per_epoch`; the
    last `N % B` examples of each epoch's permutation are skipped. `step` may be
    traced. The epoch permutation is recomputed per call (an O(N log N) sort on
    the device), which keeps this a pure function of (key, step).
    """
    per_epoch = steps_per_epoch(num_examples, batch_size)
    epoch, position = jnp.divmod(jnp.asarray(step), per_epoch)
    order = epoch_permutation(key, epoch, num_examples)
    return lax.dynamic_slice(order, (position * batch_size,), (batch_size,))


class AugmentParams(NamedTuple):
    """Per-example augmentation choices.

    offsets: int32 [B, 2], (row, column) of the crop's top-left corner in the
      padded image, each in [0, 2 * padding].
    flips: bool [B], True where the crop is mirrored left-right.
    """

    offsets: jax.Array
    flips: jax.Array


def sample_augment_params(key: jax.Array, batch_size: int, *, padding: int, flip: bool) -> AugmentParams:
    """Draw crop offsets uniform in [0, 2 * padding] and flips with probability 0.5."""
    crop_key, flip_key = jax.random.split(key)
    offsets = jax.random.randint(crop_key, (batch_size, 2), 0, 2 * padding + 1, dtype=jnp.int32)
    flips = jax.random.bernoulli(flip_key, 0.5, (batch_size,)) if flip else jnp.zeros((batch_size,), bool)
    return AugmentParams(offsets, flips)


def crop_flip(images: jax.Array, params: AugmentParams, *, padding: int) -> jax.Array:
    """Zero-pad H and W by `padding`, crop back to H x W at `params.offsets`, mirror where `params.flips`.

    Args:
      images: [B, H, W, C] or event frames [B, T, H, W, C], any dtype (pad value 0 of that
        dtype); all T frames of an example share its offset and flip.
    Returns:
      same shape and dtype.
    """
    lead = tuple(images.shape[1:-3])  # () for images, (T,) for event frames
    height, width, channels = images.shape[-3:]
    no_pad = ((0, 0),) * (1 + len(lead))
    padded = jnp.pad(images, no_pad + ((padding, padding), (padding, padding), (0, 0)))

    def crop_one(image: jax.Array, offset: jax.Array) -> jax.Array:
        start = (0,) * len(lead) + (offset[0], offset[1], 0)
        return lax.dynamic_slice(image, start, lead + (height, width, channels))

    crops = jax.vmap(crop_one)(padded, params.offsets)
    flips = params.flips.reshape((-1,) + (1,) * (images.ndim - 1))
    return jnp.where(flips, jnp.flip(crops, axis=-2), crops)


def random_crop_flip(key: jax.Array, images: jax.Array, *, padding: int = 4, flip: bool = True) -> jax.Array:
    """Random crop with zero padding and random horizontal flip, per example.

    Args:
      key: PRNG key driving the augmentation.
      images: [B, H, W, C], or event frames [B, T, H, W, C] (one crop and flip per example,
        shared by its T frames), any dtype.
      padding: pixels of zero padding on each side of H and W (>= 0).
      flip: mirror left-right with probability 0.5 per example.

    Returns:
      same shape and dtype; the input itself when padding=0 and flip=False.
    """
    padding = operator.index(padding)
    if padding < 0:
        raise ValueError(f"padding must be >= 0 pixels, got {padding}.")
    if images.ndim not in (4, 5):
        raise ValueError(f"images must be [B, H, W, C] or event frames [B, T, H, W, C], got shape {images.shape}.")
    if padding == 0 and not flip:
        return images
    params = sample_augment_params(key, images.shape[0], padding=padding, flip=flip)
    return crop_flip(images, params, padding=padding)


def normalize(
    images_uint8: jax.Array, mean: Sequence[float], std: Sequence[float], dtype: jnp.dtype = jnp.float32
) -> jax.Array:
    """`(x / 255 - mean) / std` per channel.

    Args:
      images_uint8: [..., C] raw pixels in 0..255.
      mean, std: C values each, on the [0, 1] pixel scale.
      dtype: output dtype (computed in float32 first).

    Returns:
      [..., C] normalised images of `dtype`.
    """
    mean_arr = jnp.asarray(mean, jnp.float32).reshape(-1)
    std_arr = jnp.asarray(std, jnp.float32).reshape(-1)
    channels = images_uint8.shape[-1]
    if mean_arr.shape != (channels,) or std_arr.shape != (channels,):
        raise ValueError(
            f"normalize got {mean_arr.shape[0]} mean and {std_arr.shape[0]} std values for images with "
            f"C={channels} channels (shape {images_uint8.shape}); pass one value per channel."
        )
    scaled = images_uint8.astype(jnp.float32) / 255.0
    return ((scaled - mean_arr) / std_arr).astype(dtype)


def make_train_batch(
    key: jax.Array,
    images: jax.Array,
    labels: jax.Array,
    step: IntLike,
    *,
    batch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    padding: int = 4,
    flip: bool = True,
    data_key: jax.Array,
    dtype: jnp.dtype = jnp.float32,
) -> tuple[jax.Array, jax.Array]:
    """Gather, augment and normalise the training batch of global step `step`.

    Args:
      key: PRNG key for the augmentation (e.g. fold_in(rng, step)).
      images: uint8 [N, H, W, C], the whole train split on the device (or event frames
        [N, T, H, W, C]; the batch is then [B, T, H, W, C]).
      labels: int32 [N].
      step: global step (may be traced).
      batch_size: B.
      mean, std: per-channel statistics on the [0, 1] scale.
      padding, flip: as in `random_crop_flip`.
      data_key: PRNG key for the example order; keep it fixed for the whole run.
      dtype: dtype of the returned images.

    Returns:
      (images `dtype` [B, H, W, C] augmented then normalised, labels int32 [B]).
    """
    idx = batch_indices(data_key, step, images.shape[0], batch_size)
    batch = jnp.take(images, idx, axis=0)
    batch = random_crop_flip(key, batch, padding=padding, flip=flip)  # pads raw pixels with 0 (black)
    return normalize(batch, mean, std, dtype), jnp.take(labels, idx, axis=0)


class EvalBatch(NamedTuple):
    """Host-side indices of one fixed-shape evaluation batch.

    indices: int32 [B], example ids; padding entries repeat the last example.
    mask: bool [B], True for real entries (count them, ignore the rest).
    """

    indices: np.ndarray
    mask: np.ndarray


def num_eval_batches(num_examples: int, batch_size: int) -> int:
    """ceil(N / B): batches needed to see every example once."""
    num_examples, batch_size = operator.index(num_examples), operator.index(batch_size)
    if num_examples < 1 or batch_size < 1:
        raise ValueError(f"num_examples={num_examples} and batch_size={batch_size} must both be >= 1.")
    return math.ceil(num_examples / batch_size)


def eval_batch_indices(batch_index: IntLike, num_examples: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """(int32 [B] indices, bool [B] mask) of evaluation batch `batch_index`; jit-able.

    Batch i covers examples [i * B, (i + 1) * B); positions past N are masked out
    and point at example N - 1 so the gather stays in bounds.
    """
    positions = jnp.asarray(batch_index, jnp.int32) * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
    mask = positions < num_examples
    return jnp.minimum(positions, num_examples - 1), mask


def eval_batches(num_examples: int, batch_size: int) -> list[EvalBatch]:
    """All evaluation batches: together they cover every example exactly once.

    Every batch has the same shape [B], so the eval step compiles once.
    """
    batches = []
    for i in range(num_eval_batches(num_examples, batch_size)):
        positions = i * batch_size + np.arange(batch_size)
        batches.append(EvalBatch(np.minimum(positions, num_examples - 1).astype(np.int32), positions < num_examples))
    return batches


def make_eval_batch(
    images: jax.Array,
    labels: jax.Array,
    batch_index: IntLike,
    *,
    batch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: jnp.dtype = jnp.float32,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Gather and normalise evaluation batch `batch_index` (no augmentation); jit-able.

    Args:
      images: uint8 [N, H, W, C] test split on the device (or event frames [N, T, H, W, C]);
        labels int32 [N].

    Returns:
      (images `dtype` [B, H, W, C], labels int32 [B], mask bool [B]); iterate
      batch_index over range(num_eval_batches(N, B)) and weight by mask.
    """
    idx, mask = eval_batch_indices(batch_index, images.shape[0], batch_size)
    batch = normalize(jnp.take(images, idx, axis=0), mean, std, dtype)
    return batch, jnp.take(labels, idx, axis=0), mask
