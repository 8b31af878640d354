"""Spiking neuron dynamics as pure functions scanned over time with ``jax.lax.scan``.

All neurons take a batch-major input current ``[B, T, ...]`` (``T`` time steps, any trailing
feature shape) and return spikes of the same shape. Membrane potentials are carried in float32
whatever the input dtype (bfloat16 compute keeps exact 0/1 spikes but would round the potential).

Discrete LIF, the official IDSNN form (hard reset to 0)::

    u[t] = decay * u[t-1] * (1 - s[t-1]) + I[t],      u[-1] = 0, s[-1] = 0
    s[t] = H(u[t] - v_threshold)

Soft reset (reset by subtraction, as in hybrid conversion / STDB)::

    u[t] = decay * u[t-1] - v_threshold * s[t-1] + I[t]

``decay = 1`` gives the IF neuron; a traced ``decay`` (e.g. ``sigmoid(w)`` of a parameter) gives
PLIF, with gradients flowing into it. ``detach_reset`` stops the gradient through the reset term
``s[t-1]`` (the official IDSNN code does; default True).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from snnjax import surrogates as surrogates_lib

Reset = Literal["hard", "soft"]
RESETS = ("hard", "soft")

DEFAULT_SURROGATE = surrogates_lib.rectangular(1.0)


def lif(
    currents: jax.Array,
    *,
    decay: float | jax.Array = 0.25,
    v_threshold: float | jax.Array = 0.5,
    reset: Reset = "hard",
    detach_reset: bool = True,
    surrogate: surrogates_lib.Surrogate = DEFAULT_SURROGATE,
    return_membrane: bool = False,
    unroll: int | bool = 1,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Leaky integrate-and-fire neurons over the time axis 1 of ``currents``.

    Args:
      currents: input current ``I``, shape ``[B, T, ...]``.
      decay: membrane decay factor per step (0.25 in IDSNN; 1.0 is IF). A float or an array
        broadcastable to ``currents.shape[2:]`` (per-neuron / per-channel), traced or not.
      v_threshold: firing threshold (0.5 in IDSNN), a float or an array broadcastable to
        ``[B, ...]`` (e.g. per-neuron thresholds of shape ``currents.shape[2:]``).
      reset: ``"hard"`` (to 0, by multiplying with ``1 - s``) or ``"soft"`` (subtract threshold).
      detach_reset: no gradient through the reset term.
      surrogate: the spike's surrogate gradient (static).
      return_membrane: also return ``u[t]`` (after charging, before reset), float32 ``[B, T, ...]``.
      unroll: ``lax.scan`` unroll factor; ``True`` unrolls the whole time loop.

    Returns:
      spikes ``[B, T, ...]`` in ``currents.dtype`` (0/1), or ``(spikes, membrane)``.
    """
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}; choose one of {RESETS}")
    if currents.ndim < 2:
        raise ValueError(f"currents must be [B, T, ...], got shape {currents.shape}")
    out_dtype = currents.dtype
    time_major = jnp.moveaxis(currents, 1, 0)
    decay = jnp.asarray(decay, jnp.float32)
    v_threshold = jnp.asarray(v_threshold, jnp.float32)

    def step(carry, current):
        u_prev, s_prev = carry
        s_reset = jax.lax.stop_gradient(s_prev) if detach_reset else s_prev
        if reset == "hard":
            u = decay * u_prev * (1.0 - s_reset) + current.astype(jnp.float32)
        else:
            u = decay * u_prev - v_threshold * s_reset + current.astype(jnp.float32)
        s = surrogate(u - v_threshold)
        out = (s.astype(out_dtype), u) if return_membrane else s.astype(out_dtype)
        return (u, s), out

    zeros = jnp.zeros(time_major.shape[1:], jnp.float32)
    _, outs = jax.lax.scan(step, (zeros, zeros), time_major, unroll=unroll)
    if return_membrane:
        spikes, membrane = outs
        return jnp.moveaxis(spikes, 0, 1), jnp.moveaxis(membrane, 0, 1)
    return jnp.moveaxis(outs, 0, 1)


def integrate_and_fire(
    currents: jax.Array,
    *,
    v_threshold: float | jax.Array = 1.0,
    reset: Reset = "soft",
    detach_reset: bool = True,
    surrogate: surrogates_lib.Surrogate = DEFAULT_SURROGATE,
    return_membrane: bool = False,
    unroll: int | bool = 1,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """IF neurons (no leak): :func:`lif` with ``decay = 1``; soft reset by default."""
    return lif(currents, decay=1.0, v_threshold=v_threshold, reset=reset, detach_reset=detach_reset,
               surrogate=surrogate, return_membrane=return_membrane, unroll=unroll)


def plif_decay(logit: jax.Array) -> jax.Array:
    """PLIF's learnable decay ``sigmoid(w)`` in (0, 1) (Fang et al. 2021 use ``1 - 1/tau``)."""
    return jax.nn.sigmoid(logit)
