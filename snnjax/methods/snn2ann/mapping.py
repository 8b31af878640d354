"""Spiking mapping units (SNN2ANN, Tang et al.): the ANN activation *is* the SNN's spike count.

Each spiking layer of an SNN2ANN network has an ANN twin computing ``r = ReLU(BN(conv(a_in)))``.
A mapping unit replaces the value of ``r`` by the spike count ``n`` of the same neurons in the SNN
branch (``n`` in ``0..T`` over ``T`` time steps), while the backward pass treats the unit as the
identity on ``r`` (straight-through). The ANN therefore computes on the SNN's spike features, and
the gradient of a loss on the ANN's logits trains the shared weights of both branches.

- STSU (spike-train substitution unit): ``forward = n``.
- ReSU (ReLU-gated substitution unit): ``forward = n * 1[r > 0]`` (spikes of neurons whose ANN
  twin is silent, the "noisy spikes", are not passed on).

Both: ``d out / d r = 1`` (and no gradient to ``n``). Shapes: ``r`` and ``n`` are ``[B, ...]``
(same shape); the output has ``r``'s shape and dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

MappingUnit = Callable[[jax.Array, jax.Array], jax.Array]


@jax.custom_vjp
def straight_through(x: jax.Array, value: jax.Array) -> jax.Array:
    """``value`` in the forward pass; the gradient goes to ``x`` unchanged (and none to ``value``).

    Unlike ``x + stop_gradient(value - x)`` the forward result is exactly ``value`` (no rounding).
    """
    return value.astype(x.dtype)


def _straight_through_fwd(x, value):
    return straight_through(x, value), None


def _straight_through_bwd(_, g):
    return g, None


straight_through.defvjp(_straight_through_fwd, _straight_through_bwd)


def _check(relu_out: jax.Array, spike_count: jax.Array, fn: str) -> None:
    if relu_out.shape != spike_count.shape:
        raise ValueError(
            f"{fn}: the ReLU output {relu_out.shape} and the spike count {spike_count.shape} must "
            "have the same shape (the count is summed over time: [B, T, ...] -> [B, ...])"
        )


def stsu(relu_out: jax.Array, spike_count: jax.Array) -> jax.Array:
    """STSU: forward the spike count, backward identity to ``relu_out``."""
    _check(relu_out, spike_count, "stsu")
    return straight_through(relu_out, spike_count)


def resu(relu_out: jax.Array, spike_count: jax.Array) -> jax.Array:
    """ReSU: forward ``spike_count * 1[relu_out > 0]``, backward identity to ``relu_out``."""
    _check(relu_out, spike_count, "resu")
    return straight_through(relu_out, jnp.where(relu_out > 0, spike_count, jnp.zeros_like(spike_count)))


MAPPING_UNITS: dict[str, MappingUnit] = {"stsu": stsu, "resu": resu}


def get(name: str) -> MappingUnit:
    """The mapping unit called ``name`` (``"stsu"`` or ``"resu"``)."""
    if name not in MAPPING_UNITS:
        raise ValueError(
            f"unknown spiking mapping unit {name!r}; choose one of {sorted(MAPPING_UNITS)} "
            "(set it with --config.model.mapping_unit=NAME)"
        )
    return MAPPING_UNITS[name]
