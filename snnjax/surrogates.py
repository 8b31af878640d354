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
      param: the shape parameter; its meaning depends on ``name`` (width, alpha; see the factories).
      scale: a constant factor on the surrogate derivative (1.0 for all standard surrogates).
      beta: STDB only: decay of the surrogate per time step since the neuron's last spike.
    """

    name: str
    param: float
    scale: float = 1.0
    beta: float = 0.0

    def __post_init__(self):
        if self.name not in NAMES:
            raise ValueError(
                f"unknown surrogate {self.name!r}; choose one of {sorted(NAMES)} "
                "(set it with --config.model.surrogate=NAME)"
            )
        if not (isinstance(self.param, (int, float)) and self.param > 0 and math.isfinite(self.param)):
            raise ValueError(f"surrogate {self.name!r} needs a positive finite shape parameter, got {self.param!r}")
        if self.beta < 0:
            raise ValueError(f"STDB beta must be >= 0, got {self.beta} (paper: 0.01)")

    @property
    def timing_dependent(self) -> bool:
        """True for STDB, whose gradient needs the steps since each neuron's last spike."""
        return self.name == "stdb"

    def derivative(self, x: jax.Array, since_spike: jax.Array | None = None) -> jax.Array:
        """Surrogate dH/dx evaluated at ``x`` (same shape and dtype as ``x``); STDB also needs ``since_spike``."""
        if self.timing_dependent:
            if since_spike is None:
                raise ValueError(
                    "the STDB surrogate needs since_spike (steps since the last spike); call "
                    "surrogates.spike(x, surrogate, since_spike)"
                )
            grad = self.param * jnp.exp(-self.beta * since_spike.astype(jnp.float32))
            return (self.scale * grad).astype(x.dtype)
        return (self.scale * _KINDS[self.name][0](x, self.param)).astype(x.dtype)

    def __call__(self, x: jax.Array, since_spike: jax.Array | None = None) -> jax.Array:
        """Spikes ``H(x)`` (0/1 in ``x.dtype``) with this surrogate's gradient."""
        return spike(x, self, since_spike)


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


def _linear(x, alpha):
    # Hybrid conversion's "linear" surrogate: alpha * max(0, 1 - |x|) (Rathi et al. code, alpha 0.3).
    return alpha * jnp.maximum(0.0, 1.0 - jnp.abs(x))


# THE surrogate table: name -> (derivative(x, param) or None, default param). STDB's derivative
# depends on the time since the last spike (Surrogate.derivative). Config names are these names.
_KINDS = {
    "rectangular": (_rectangular, 1.0),
    "sigmoid": (_sigmoid, 4.0),
    "atan": (_atan, 2.0),
    "triangle": (_triangle, 1.0),
    "linear": (_linear, 0.3),
    "stdb": (None, 0.3),
}
NAMES = frozenset(_KINDS)
STDB_BETA = 0.01  # Rathi et al. 2020


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def heaviside(x: jax.Array, surrogate: Surrogate) -> jax.Array:
    """``1 where x > 0 else 0`` in ``x.dtype``; backward uses ``surrogate.derivative``."""
    return (x > 0).astype(x.dtype)


def _heaviside_fwd(x, surrogate):
    return heaviside(x, surrogate), x


def _heaviside_bwd(surrogate, x, g):
    return (g * surrogate.derivative(x),)


heaviside.defvjp(_heaviside_fwd, _heaviside_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _timed_heaviside(x: jax.Array, since_spike: jax.Array, surrogate: Surrogate) -> jax.Array:
    del since_spike
    return (x > 0).astype(x.dtype)


def _timed_fwd(x, since_spike, surrogate):
    return _timed_heaviside(x, since_spike, surrogate), (x, since_spike)


def _timed_bwd(surrogate, residuals, g):
    x, since_spike = residuals
    return g * surrogate.derivative(x, since_spike), jnp.zeros_like(since_spike)


_timed_heaviside.defvjp(_timed_fwd, _timed_bwd)


def spike(x: jax.Array, surrogate: Surrogate, since_spike: jax.Array | None = None) -> jax.Array:
    """``H(x)`` with ``surrogate``'s gradient; ``since_spike`` (steps since the last spike, no gradient)
    is read by timing-dependent surrogates (STDB) only."""
    if surrogate.timing_dependent:
        if since_spike is None:
            raise ValueError("the STDB surrogate needs since_spike (steps since each neuron's last spike)")
        return _timed_heaviside(x, since_spike, surrogate)
    return heaviside(x, surrogate)


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


def linear(alpha: float = 0.3) -> Surrogate:
    """Hybrid conversion's linear surrogate ``alpha * max(0, 1 - |x|)`` (its reference code's default)."""
    return Surrogate("linear", float(alpha))


def stdb(alpha: float = 0.3, beta: float = STDB_BETA) -> Surrogate:
    """Spike-timing-dependent surrogate (STDB, Rathi et al. 2020): ``alpha * exp(-beta * dt)``, ``dt`` the
    steps since the neuron's last spike (call it with ``since_spike``; a neuron that never fired
    should carry a large ``dt``, so that its surrogate is ~0, as in the reference code)."""
    return Surrogate("stdb", float(alpha), beta=float(beta))


def get(name: str, param: float | None = None, *, beta: float = STDB_BETA) -> Surrogate:
    """Surrogate by name with its default (or the given) shape parameter; for configs
    (``beta``: STDB's decay per step, ignored by the others)."""
    if name not in _KINDS:
        raise ValueError(
            f"unknown surrogate {name!r}; choose one of {sorted(NAMES)} (set it with --config.model.surrogate=NAME)"
        )
    param = _KINDS[name][1] if param is None else param
    if name == "stdb":
        return stdb(param, beta)
    return Surrogate(name, float(param))
