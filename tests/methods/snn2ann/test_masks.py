"""Packed-bit Bernoulli keep masks (membrane dropout): bit layout, exact probabilities, memory."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax import models
from snnjax.methods import snn2ann
from snnjax.methods.snn2ann import masks
from snnjax.train import steps
from snnjax.train.state import create_train_state


@pytest.mark.parametrize("keep, bits", [(0.5, 1), (0.25, 2), (0.75, 2), (0.875, 4), (1 / 256, 8), (0.7, 32)])
def test_bits_per_draw_is_the_fewest_that_represent_keep_exactly(keep, bits):
    assert masks.bits_per_draw(keep) == bits


@pytest.mark.parametrize("keep", [0.0, 1.0, -0.5])
def test_bits_per_draw_rejects_probabilities_outside_the_open_interval(keep):
    with pytest.raises(ValueError, match="keep probability"):
        masks.bits_per_draw(keep)


def _numpy_unpack(words: np.ndarray, keep: float, size: int) -> np.ndarray:
    """Entry i = bits (i % (32 // k)) * k .. of word i // (32 // k), kept when below keep * 2**k."""
    k = masks.bits_per_draw(keep)
    if k == 32:
        return words[:size].astype(np.float64) < round(keep * 2.0**32)
    out = np.empty(size, bool)
    for i in range(size):
        word, slot = divmod(i, 32 // k)
        out[i] = ((int(words[word]) >> (slot * k)) & (2**k - 1)) < keep * 2**k
    return out


@pytest.mark.parametrize("keep", [0.5, 0.75, 0.875, 0.7])
def test_unpack_reads_every_draw_once_in_row_major_order(keep):
    shape = (3, 5, 7)  # 105 entries: not a multiple of any draws-per-word count
    words = masks.draw_words(jax.random.key(3), keep, 2, 105)
    assert words.shape == (2, masks.words_per_step(105, keep)) and words.dtype == jnp.uint32
    for t in range(2):
        got = np.asarray(masks.unpack_keep(words[t], keep, shape))
        np.testing.assert_array_equal(got.reshape(-1), _numpy_unpack(np.asarray(words[t]), keep, 105))


@pytest.mark.parametrize("keep", [0.5, 0.75, 0.7])
def test_masks_are_independent_bernoulli_with_probability_keep(keep):
    steps_, size = 4, 50_000
    words = masks.draw_words(jax.random.key(0), keep, steps_, size)
    m = np.stack([np.asarray(masks.unpack_keep(words[t], keep, (size,))) for t in range(steps_)]).astype(np.float64)
    sd = np.sqrt(keep * (1 - keep) / m.size)
    assert abs(m.mean() - keep) < 5 * sd
    # Neighbouring entries (often bits of one word) and consecutive steps are uncorrelated.
    centred = m - keep
    for a, b in ((centred[:, :-1], centred[:, 1:]), (centred[:-1], centred[1:])):
        corr = np.mean(a * b) / (keep * (1 - keep))
        assert abs(corr) < 5 / np.sqrt(a.size), corr


def _step_temp_bytes(membrane_dropout: float) -> int:
    cfg = snn2ann.model_config(layers="1,1,M", width=8, time_steps=4, membrane_dropout=membrane_dropout, dropout=(0.0,))
    model = models.build(cfg, 10)
    x, y = jnp.zeros((8, 16, 16, 3)), jnp.zeros((8,), jnp.int32)
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x[:1], train=False)
    variables = {k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}
    tx = optax.sgd(0.1)
    state = create_train_state(variables, tx, jax.random.key(2))
    compiled = jax.jit(snn2ann.make_train_step(model, tx)).lower(state, (x, y)).compile()
    return int(compiled.memory_analysis().temp_size_in_bytes)


def test_official_membrane_dropout_adds_almost_no_compiled_step_memory():
    # Drawing jax.random.bernoulli masks of [T, B, H, W, C] made the step need 1.71x the
    # temporaries of the plain IF step on this net (1.9x on the CIFAR VGG-13): threefry's
    # counters and bits for every neuron and step. Packed bits, unpacked per step: ~1.04x.
    plain, dropout = _step_temp_bytes(0.0), _step_temp_bytes(0.5)
    assert dropout <= 1.1 * plain, (dropout, plain)
