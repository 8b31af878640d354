"""Bernoulli keep masks from packed random bits: the draws of SNN2ANN's membrane dropout.

``jax.random.bernoulli(key, p, shape)`` spends one threefry evaluation (a 32-bit word) per
entry. The membrane dropout of the SNN branch draws one mask entry per neuron and time step
(``T x B x H x W x C``, 43 M entries a step for VGG-13 at width 16, T = 4, batch 32): on a CPU
that threefry pass cost more than the rest of the SNN branch, and the ``[T, B, H, W, C]`` bits,
counters and float masks that XLA materialised for it doubled the step's compiled memory
(docs/snn2ann.md, "Where the step's memory went").

Here one draw uses only ``k`` bits of a word, the fewest of 1, 2, 4, 8, 16 for which
``keep * 2**k`` is an integer: ``keep = 0.5`` (the official rate) takes 1 bit, so a 32-bit word
serves 32 neurons. A draw keeps its neuron when its ``k``-bit integer ``u`` (uniform on
``0 .. 2**k - 1``) is below ``keep * 2**k``, which happens with probability exactly ``keep``.
Other rates use a whole word per draw, ``u < round(keep * 2**32)`` (probability ``keep`` to
2**-32, finer than ``bernoulli``'s float32 uniform). The words of all ``T`` steps are drawn at
once (``[T, words]`` uint32, ``k / 32`` of the float masks' size) and unpacked one step at a
time, so no ``[T, ...]`` mask is ever materialised.

The draws differ from ``jax.random.bernoulli``'s for the same key (a different use of the
random bits); their distribution is the same: independent Bernoulli(``keep``) entries.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

WORD_BITS = 32
_PACKED_BITS = (1, 2, 4, 8, 16)


def bits_per_draw(keep: float) -> int:
    """Bits of a word one Bernoulli(``keep``) draw uses: the fewest ``k`` in 1, 2, 4, 8, 16 with
    ``keep * 2**k`` an integer, else 32 (``keep`` in (0, 1))."""
    if not 0.0 < keep < 1.0:
        raise ValueError(f"keep probability must be in (0, 1), got {keep} (membrane dropout rate = 1 - keep)")
    for k in _PACKED_BITS:
        if float(keep * 2**k).is_integer():
            return k
    return WORD_BITS


def words_per_step(size: int, keep: float) -> int:
    """uint32 words holding ``size`` draws of :func:`bits_per_draw` bits."""
    return math.ceil(size * bits_per_draw(keep) / WORD_BITS)


def draw_words(key: jax.Array, keep: float, steps: int, size: int) -> jax.Array:
    """Random words for ``steps`` masks of ``size`` entries each: uint32 ``[steps, words_per_step]``."""
    return jax.random.bits(key, (steps, words_per_step(size, keep)), jnp.uint32)


def unpack_keep(words: jax.Array, keep: float, shape: tuple[int, ...]) -> jax.Array:
    """One step's boolean keep mask of ``shape`` from its words ``[words_per_step(prod(shape))]``.

    Entry ``i`` (row-major in ``shape``) reads bits ``(i % (32 // k)) * k ..`` of word
    ``i // (32 // k)``.
    """
    k = bits_per_draw(keep)
    size = math.prod(shape)
    if k == WORD_BITS:
        threshold = min(round(keep * 2.0**WORD_BITS), 2**WORD_BITS - 1)
        return (words[:size] < jnp.uint32(threshold)).reshape(shape)
    per_word = WORD_BITS // k
    shifts = jnp.arange(per_word, dtype=jnp.uint32) * jnp.uint32(k)
    draws = (words[:, None] >> shifts) & jnp.uint32(2**k - 1)  # [words, per_word], uniform on 0 .. 2**k - 1
    return (draws.reshape(-1)[:size] < jnp.uint32(round(keep * 2**k))).reshape(shape)
