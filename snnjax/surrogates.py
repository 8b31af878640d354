"""Heaviside spike functions with surrogate gradients (``jax.custom_vjp``).

The forward pass of every function here is the exact step ``H(x) = 1 if x > 0 else 0``; only
the backward pass differs. ``x`` is the membrane potential minus the threshold (units of
membrane potential), so the surrogate derivative is centred on the firing threshold.

A :class:`Surrogate` is a frozen, hashable dataclass: it is passed as a *static* argument (it is a
``nondiff_argnums`` entry of the custom VJP and a hashable ``jit`` static argument), so its shape
parameter is a compile-time constant. All spike functions work under ``jit``, ``grad``, ``vmap``,
``lax.scan`` and ``jax.checkpoint``.

Example::

    from snnjax import surrogates
    spike = surrogates.rectangular(width=1.0)
    s = spike(u - v_threshold)          # 0/1 spikes, gradient 1/width inside |x| < width/2
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """A Heaviside spike whose gradient is replaced by ``derivative``.

    Attributes:
      name: one of :data:`NAMES`.
      param: the shape parameter; its meaning depends on ``name`` (see :func:`derivative`).
      scale: a constant factor on the surrogate derivative (1.0 for all standard surrogates; the
        hybrid-conversion code's "linear" surrogate uses 0.3).
    """

    name: str
    param: float
    scale: float = 1.0

    def __post_init__(self):
        if self.name not in NAMES:
            raise ValueError(f"unknown surrogate {self.name!r}; choose one of {sorted(NAMES)}")
        if not (isinstance(self.param, (int, float)) and self.param > 0 and math.isfinite(self.param)):
            raise ValueError(f"surrogate {self.name!r} needs a positive finite shape parameter, got {self.param!r}")

    def derivative(self, x: jax.Array) -> jax.Array:
        """Surrogate dH/dx evaluated at ``x`` (same shape and dtype as ``x``)."""
        return (self.scale * _DERIVATIVES[self.name](x, self.param)).astype(x.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Spikes ``H(x)`` (0/1 in ``x.dtype``) with this surrogate's gradient."""
        return heaviside(x, self)


def _rectangular(x, width):
    # STBP (Wu et al. 2018), the official IDSNN code: 1/a on |x| < a/2, integrates to 1.
    return jnp.where(jnp.abs(x) < width / 2, 1.0 / width, 0.0)


def _sigmoid(x, alpha):
    sig = jax.nn.sigmoid(alpha * x)
    return alpha * sig * (1.0 - sig)


def _atan(x, alpha):
    return (alpha / 2) / (1 + (jnp.pi / 2 * alpha * x) ** 2)


def _triangle(x, width):
    # Peak 1/width at x = 0, support |x| < width, integrates to 1.
    return jnp.maximum(0.0, 1.0 - jnp.abs(x) / width) / width


_DERIVATIVES = {
    "rectangular": _rectangular,
    "sigmoid": _sigmoid,
    "atan": _atan,
    "triangle": _triangle,
}
NAMES = frozenset(_DERIVATIVES)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def heaviside(x: jax.Array, surrogate: Surrogate) -> jax.Array:
    """``1 where x > 0 else 0`` in ``x.dtype``; backward uses ``surrogate.derivative``."""
    return (x > 0).astype(x.dtype)


def _heaviside_fwd(x, surrogate):
    return heaviside(x, surrogate), x


def _heaviside_bwd(surrogate, x, g):
    return (g * surrogate.derivative(x),)


heaviside.defvjp(_heaviside_fwd, _heaviside_bwd)


def rectangular(width: float = 1.0) -> Surrogate:
    """STBP rectangle: derivative ``1/width`` where ``|x| < width/2``, else 0 (IDSNN default)."""
    return Surrogate("rectangular", float(width))


def sigmoid(alpha: float = 4.0) -> Surrogate:
    """Derivative of ``sigmoid(alpha * x)`` (SpikingJelly's default alpha 4)."""
    return Surrogate("sigmoid", float(alpha))


def atan(alpha: float = 2.0) -> Surrogate:
    """Derivative of ``arctan(pi/2 * alpha * x)/pi + 1/2`` (SpikingJelly's default alpha 2)."""
    return Surrogate("atan", float(alpha))


def triangle(width: float = 1.0, scale: float = 1.0) -> Surrogate:
    """Triangle ``scale * max(0, 1 - |x|/width) / width``."""
    return Surrogate("triangle", float(width), float(scale))


def get(name: str, param: float | None = None) -> Surrogate:
    """Surrogate by name with its default (or the given) shape parameter; for configs."""
    factories = {"rectangular": rectangular, "sigmoid": sigmoid, "atan": atan, "triangle": triangle}
    if name not in factories:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {sorted(factories)} "
                         "(set it with --config.model.surrogate=NAME)")
    return factories[name]() if param is None else factories[name](param)


# ---------------------------------------------------------------------------------------------
# Spike-timing-dependent surrogate (STDB, Rathi et al. 2020).
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def stdb_heaviside(x: jax.Array, steps_since_spike: jax.Array, alpha: float, beta: float) -> jax.Array:
    """Spike ``H(x)`` whose surrogate is ``alpha * exp(-beta * dt)`` (STDB).

    Args:
      x: membrane potential relative to threshold, any shape.
      steps_since_spike: ``dt``, time steps since the neuron's last spike (same shape as ``x``);
        no gradient flows into it. A neuron that never spiked should carry a large ``dt`` so
        that its surrogate is ~0, as in the reference code.
      alpha, beta: static shape constants (paper defaults 0.3 and 0.01).
    """
    del steps_since_spike, alpha, beta
    return (x > 0).astype(x.dtype)


def _stdb_fwd(x, dt, alpha, beta):
    return stdb_heaviside(x, dt, alpha, beta), dt


def _stdb_bwd(alpha, beta, dt, g):
    grad = alpha * jnp.exp(-beta * dt.astype(jnp.float32))
    return (g * grad.astype(g.dtype), jnp.zeros_like(dt))


stdb_heaviside.defvjp(_stdb_fwd, _stdb_bwd)
