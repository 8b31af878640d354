"""On-device pipeline: batch order, augmentation, normalisation, evaluation batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.data.batches import (
    AugmentParams,
    batch_indices,
    crop_flip,
    epoch_permutation,
    eval_batch_indices,
    eval_batches,
    make_eval_batch,
    make_train_batch,
    normalize,
    num_eval_batches,
    random_crop_flip,
    sample_augment_params,
    steps_per_epoch,
)

KEY = jax.random.key(0)
N, B = 10, 3  # 3 steps per epoch, 1 example dropped per epoch


def test_steps_per_epoch():
    assert steps_per_epoch(10, 3) == 3
    assert steps_per_epoch(50000, 128) == 390
    assert steps_per_epoch(4, 4) == 1
    with pytest.raises(ValueError, match=r"batch_size=8.*num_examples=5"):
        steps_per_epoch(5, 8)
    with pytest.raises(ValueError, match="batch_size"):
        steps_per_epoch(5, 0)


def test_epoch_permutation_is_a_deterministic_permutation():
    perm = np.asarray(epoch_permutation(KEY, 0, 50))
    assert perm.dtype == np.int32 and sorted(perm) == list(range(50))
    np.testing.assert_array_equal(perm, epoch_permutation(KEY, 0, 50))
    assert not np.array_equal(perm, epoch_permutation(KEY, 1, 50))
    assert not np.array_equal(perm, epoch_permutation(jax.random.key(1), 0, 50))
    traced = jax.jit(epoch_permutation, static_argnums=2)(KEY, jnp.int32(1), 50)
    np.testing.assert_array_equal(traced, epoch_permutation(KEY, 1, 50))


def test_one_epoch_covers_n_minus_remainder_distinct_examples():
    indices = np.concatenate([np.asarray(batch_indices(KEY, s, N, B)) for s in range(3)])
    assert indices.dtype == np.int32 and indices.shape == (9,)
    assert len(set(indices.tolist())) == 9 and set(indices.tolist()) <= set(range(N))
    np.testing.assert_array_equal(indices, np.asarray(epoch_permutation(KEY, 0, N))[:9])


def test_epochs_differ_and_follow_their_permutation():
    epoch0 = np.concatenate([np.asarray(batch_indices(KEY, s, 50, 5)) for s in range(10)])
    epoch1 = np.concatenate([np.asarray(batch_indices(KEY, s, 50, 5)) for s in range(10, 20)])
    assert not np.array_equal(epoch0, epoch1)
    np.testing.assert_array_equal(epoch1, epoch_permutation(KEY, 1, 50))


def test_resume_equivalence_with_traced_step():
    jitted = jax.jit(batch_indices, static_argnums=(2, 3))
    iterated = [np.asarray(jitted(KEY, jnp.int32(s), N, B)) for s in range(8)]
    # Step 7 = epoch 2, position 1: computed directly and by hand from the permutation.
    np.testing.assert_array_equal(jitted(KEY, jnp.int32(7), N, B), iterated[7])
    np.testing.assert_array_equal(iterated[7], np.asarray(epoch_permutation(KEY, 2, N))[3:6])
    np.testing.assert_array_equal(batch_indices(KEY, 7, N, B), iterated[7])  # python int step too


def test_crop_flip_by_hand():
    image = jnp.arange(1, 10, dtype=jnp.uint8).reshape(1, 3, 3, 1)  # [[1 2 3] [4 5 6] [7 8 9]]

    def crop(offset, flip):
        params = AugmentParams(jnp.array([offset], jnp.int32), jnp.array([flip]))
        return np.asarray(crop_flip(image, params, padding=1))[0, :, :, 0]

    np.testing.assert_array_equal(crop((0, 0), False), [[0, 0, 0], [0, 1, 2], [0, 4, 5]])
    np.testing.assert_array_equal(crop((1, 1), False), [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(crop((2, 1), False), [[4, 5, 6], [7, 8, 9], [0, 0, 0]])
    np.testing.assert_array_equal(crop((2, 1), True), [[6, 5, 4], [9, 8, 7], [0, 0, 0]])
    np.testing.assert_array_equal(crop((0, 2), True), [[0, 0, 0], [0, 3, 2], [0, 6, 5]])


def test_random_crop_equals_padded_slice_at_offset_in_range():
    batch, h, w, c, pad = 64, 5, 4, 2, 3
    images = jnp.arange(batch * h * w * c, dtype=jnp.int32).reshape(batch, h, w, c) + 1  # distinct, nonzero
    out = np.asarray(random_crop_flip(KEY, images, padding=pad, flip=True))
    padded = np.pad(np.asarray(images), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    flips = 0
    for b in range(batch):
        matches = [
            (dy, dx, flipped)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            for flipped in (False, True)
            if np.array_equal(out[b], (lambda s: s[:, ::-1] if flipped else s)(padded[b, dy : dy + h, dx : dx + w]))
        ]
        assert len(matches) == 1, (b, matches)  # exactly one in-range (offset, flip) explains it
        flips += matches[0][2]
    assert 0 < flips < batch


def test_augment_param_statistics():
    params = sample_augment_params(KEY, 4000, padding=4, flip=True)
    offsets = np.asarray(params.offsets)
    assert offsets.min() == 0 and offsets.max() == 8  # uniform over [0, 2 * padding]
    assert set(np.unique(offsets).tolist()) == set(range(9))
    assert abs(np.asarray(params.flips).mean() - 0.5) < 0.04  # 5 sigma for p = 0.5, n = 4000
    no_flip = sample_augment_params(KEY, 100, padding=4, flip=False)
    assert not np.asarray(no_flip.flips).any()


def test_identity_without_padding_and_flip():
    images = jnp.arange(2 * 3 * 3 * 1, dtype=jnp.uint8).reshape(2, 3, 3, 1)
    assert random_crop_flip(KEY, images, padding=0, flip=False) is images
    # padding=0 with flip only mirrors.
    out = np.asarray(random_crop_flip(KEY, images, padding=0, flip=True))
    for b in range(2):
        assert np.array_equal(out[b], images[b]) or np.array_equal(out[b], images[b, :, ::-1])
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(KEY, images, padding=-1)


def test_normalize_by_hand():
    pixels = jnp.array([[0, 255, 51], [0, 255, 51]], jnp.uint8).T.reshape(1, 1, 3, 2)  # C = 2
    out = np.asarray(normalize(pixels, (0.5, 0.2), (0.25, 0.4)))
    assert out.dtype == np.float32
    # channel 0: (x/255 - 0.5) / 0.25 ; channel 1: (x/255 - 0.2) / 0.4
    np.testing.assert_allclose(out[0, 0, :, 0], [-2.0, 2.0, -1.2], rtol=1e-6)
    np.testing.assert_allclose(out[0, 0, :, 1], [-0.5, 2.0, 0.0], atol=1e-6)
    assert normalize(pixels, (0.5, 0.2), (0.25, 0.4), jnp.bfloat16).dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="C=2"):
        normalize(pixels, (0.5, 0.5, 0.5), (0.2, 0.2, 0.2))


def test_train_batch_pads_black_before_normalising():
    n, h, w, pad = 8, 6, 6, 2
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    images = jnp.full((n, h, w, 3), 255, jnp.uint8)  # all white
    labels = jnp.arange(n, dtype=jnp.int32)
    aug_key, data_key = jax.random.key(3), jax.random.key(4)
    x, y = make_train_batch(
        aug_key,
        images,
        labels,
        0,
        batch_size=n,
        mean=mean,
        std=std,
        padding=pad,
        flip=True,
        data_key=data_key,
    )
    x = np.asarray(x)
    assert x.shape == (n, h, w, 3) and x.dtype == np.float32
    white = (1 - np.array(mean)) / np.array(std)
    black = -np.array(mean) / np.array(std)
    is_black = np.isclose(x, black).all(-1)
    assert (np.isclose(x, white).all(-1) | is_black).all()
    # Padded pixel count per example follows its crop offset: H*W - (H-|dy|)*(W-|dx|).
    offsets = np.asarray(sample_augment_params(aug_key, n, padding=pad, flip=True).offsets) - pad
    expected = h * w - (h - np.abs(offsets[:, 0])) * (w - np.abs(offsets[:, 1]))
    np.testing.assert_array_equal(is_black.sum((1, 2)), expected)
    assert expected.sum() > 0
    np.testing.assert_array_equal(np.sort(np.asarray(y)), np.arange(n))  # one epoch of 8 = all labels


def test_train_batch_labels_match_images_and_jit_compiles_once():
    n, batch = 12, 4
    images = jnp.broadcast_to((jnp.arange(n, dtype=jnp.uint8) * 10)[:, None, None, None], (n, 2, 2, 1))
    labels = jnp.arange(n, dtype=jnp.int32)
    traces = []

    @jax.jit
    def step_fn(step):
        traces.append(step)
        return make_train_batch(
            jax.random.fold_in(KEY, step),
            images,
            labels,
            step,
            batch_size=batch,
            mean=(0.0,),
            std=(1.0,),
            padding=0,
            flip=False,
            data_key=jax.random.key(9),
        )

    for step in range(5):
        x, y = step_fn(jnp.int32(step))
        np.testing.assert_allclose(np.asarray(x)[:, 0, 0, 0] * 255, np.asarray(y) * 10, atol=1e-3)
        np.testing.assert_array_equal(y, batch_indices(jax.random.key(9), step, n, batch))
    assert len(traces) == 1


def test_eval_batches_cover_every_example_once_with_fixed_shapes():
    assert num_eval_batches(10, 4) == 3 and num_eval_batches(8, 4) == 2
    batches = eval_batches(10, 4)
    assert len(batches) == 3 and all(b.indices.shape == (4,) and b.mask.shape == (4,) for b in batches)
    covered = np.concatenate([b.indices[b.mask] for b in batches])
    np.testing.assert_array_equal(covered, np.arange(10))
    np.testing.assert_array_equal(batches[-1].mask, [True, True, False, False])
    np.testing.assert_array_equal(batches[-1].indices, [8, 9, 9, 9])  # padding stays in bounds
    jitted = jax.jit(eval_batch_indices, static_argnums=(1, 2))
    for i, b in enumerate(batches):
        idx, mask = jitted(jnp.int32(i), 10, 4)
        np.testing.assert_array_equal(idx, b.indices)
        np.testing.assert_array_equal(mask, b.mask)


def test_make_eval_batch_counts_each_label_once():
    n, batch = 7, 3
    images = jnp.zeros((n, 2, 2, 1), jnp.uint8)
    labels = jnp.arange(n, dtype=jnp.int32) + 100
    fn = jax.jit(lambda i: make_eval_batch(images, labels, i, batch_size=batch, mean=(0.5,), std=(0.5,)))
    seen = []
    for i in range(num_eval_batches(n, batch)):
        x, y, mask = fn(jnp.int32(i))
        assert x.shape == (batch, 2, 2, 1)
        np.testing.assert_allclose(x, -1.0)  # (0 - 0.5) / 0.5
        seen.extend(np.asarray(y)[np.asarray(mask)].tolist())
    assert seen == list(range(100, 107))
