"""Spiking neuron dynamics as pure functions scanned over time with ``jax.lax.scan``.

(The parallel spiking neurons at the end, :func:`psn`, :func:`masked_psn` and :func:`sliding_psn`,
have no recursion: one matmul over the time axis.)

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

Two implementations of the same dynamics (``impl``):

* ``"scan"`` (default): one ``lax.scan`` whose step calls the surrogate spike; JAX differentiates the
  scan, saving every per-step residual it needs.
* ``"fused"``: one ``jax.custom_vjp`` around the whole time loop. The forward keeps only the float32
  membrane ``u[0..T-1]`` for the backward, which runs the adjoint recursion by hand (see
  :func:`_lif_fused_bwd`). Spikes are bit-identical to ``"scan"`` (same float32 forward
  arithmetic); gradients agree to float rounding. It fixes what the backward keeps instead of
  leaving it to XLA; in the unrolled ResNet-18 step it measured the same memory as ``"scan"``
  (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from snnjax import surrogates as surrogates_lib

Reset = Literal["hard", "soft"]
RESETS = ("hard", "soft")
Impl = Literal["scan", "fused"]
IMPLS = ("scan", "fused")

DEFAULT_SURROGATE = surrogates_lib.rectangular(1.0)


def charge(u_prev: jax.Array, s_prev: jax.Array, current: jax.Array, *, decay, v_threshold, reset: Reset) -> jax.Array:
    """One step of membrane charging, float32: ``u[t]`` from ``u[t-1]``, ``s[t-1]`` and ``I[t]``.

    Hard reset: ``decay * u[t-1] * (1 - s[t-1]) + I[t]``; soft: ``decay * u[t-1] - v_threshold * s[t-1] + I[t]``.
    Every neuron of snnjax charges with this function (the scan and fused LIF, the hybrid STDB neuron,
    SNN2ANN's IF neuron with membrane dropout).
    """
    if reset == "hard":
        return decay * u_prev * (1.0 - s_prev) + current.astype(jnp.float32)
    return decay * u_prev - v_threshold * s_prev + current.astype(jnp.float32)


def fire(
    u: jax.Array,
    v_threshold,
    surrogate: surrogates_lib.Surrogate | None = None,
    *,
    since_spike: jax.Array | None = None,
    relative: bool = False,
) -> jax.Array:
    """One step of firing: spikes ``s[t] = H(u[t] - v_threshold)``, float32 0/1, shape of ``u``.

    Every neuron of snnjax fires with this function (the scan and fused LIF, the hybrid STDB neuron,
    SNN2ANN's IF neuron with membrane dropout), after charging with :func:`charge`.

    Args:
      u: float32 membrane after charging ``[B, ...]``.
      v_threshold: threshold, broadcastable to ``u``.
      surrogate: the spike's surrogate gradient; None: no gradient (a forward-only neuron, or a
        hand-written backward).
      since_spike: steps since each neuron's last spike, for timing-dependent surrogates (STDB).
      relative: the surrogate sees ``u / v_threshold - 1`` (the hybrid neuron: its surrogate's width is
        relative to the layer's threshold) instead of ``u - v_threshold``; same spikes for V_th > 0.
    """
    x = u / v_threshold - 1.0 if relative else u - v_threshold
    if surrogate is None:
        return (x > 0).astype(jnp.float32)
    return surrogates_lib.spike(x, surrogate, since_spike)


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
    impl: Impl = "scan",
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
      impl: ``"scan"`` (autodiff through the scan) or ``"fused"`` (one custom VJP over the time
        loop, less memory; same spikes, gradients equal to float rounding).

    Returns:
      spikes ``[B, T, ...]`` in ``currents.dtype`` (0/1), or ``(spikes, membrane)``.
    """
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}; choose one of {RESETS}")
    if impl not in IMPLS:
        raise ValueError(f"unknown lif impl {impl!r}; choose one of {IMPLS}")
    if currents.ndim < 2:
        raise ValueError(f"currents must be [B, T, ...], got shape {currents.shape}")
    out_dtype = currents.dtype
    decay = jnp.asarray(decay, jnp.float32)
    v_threshold = jnp.asarray(v_threshold, jnp.float32)
    if impl == "fused":
        options = _FusedOptions(reset, bool(detach_reset), surrogate, unroll)
        spikes, membrane = _lif_fused(options, jnp.moveaxis(currents, 1, 0), decay, v_threshold)
        spikes = jnp.moveaxis(spikes, 0, 1)
        return (spikes, jnp.moveaxis(membrane, 0, 1)) if return_membrane else spikes

    def step(carry, current):
        u_prev, s_prev = carry
        s_reset = jax.lax.stop_gradient(s_prev) if detach_reset else s_prev
        u = charge(u_prev, s_reset, current, decay=decay, v_threshold=v_threshold, reset=reset)
        s = fire(u, v_threshold, surrogate)
        out = (s.astype(out_dtype), u) if return_membrane else s.astype(out_dtype)
        return (u, s), out

    zeros = jnp.zeros(currents.shape[:1] + currents.shape[2:], jnp.float32)
    num_steps = currents.shape[1]
    if unroll is True or (not isinstance(unroll, bool) and unroll >= num_steps):
        # Fully unrolled: step on the batch-major slices [:, t] and stack on axis 1, so that no
        # [B, T] <-> [T, B] transpose of the activations is materialised (same arithmetic as the scan).
        carry, outs = (zeros, zeros), []
        for t in range(num_steps):
            carry, out = step(carry, currents[:, t])
            outs.append(out)
        return jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *outs)
    _, outs = jax.lax.scan(step, (zeros, zeros), jnp.moveaxis(currents, 1, 0), unroll=unroll)
    if return_membrane:
        spikes, membrane = outs
        return jnp.moveaxis(spikes, 0, 1), jnp.moveaxis(membrane, 0, 1)
    return jnp.moveaxis(outs, 0, 1)


class _FusedOptions(NamedTuple):
    """Static (hashable) settings of the fused LIF."""

    reset: Reset
    detach_reset: bool
    surrogate: surrogates_lib.Surrogate
    unroll: int | bool


def _lif_fused_forward(options: _FusedOptions, currents, decay, v_threshold):
    """Time-major ``currents [T, B, ...]`` -> (spikes in ``currents.dtype``, float32 membrane)."""

    def step(carry, current):
        u_prev, s_prev = carry
        u = charge(u_prev, s_prev, current, decay=decay, v_threshold=v_threshold, reset=options.reset)
        s = fire(u, v_threshold)  # the gradient is _lif_fused_bwd's
        return (u, s), (s.astype(currents.dtype), u)

    zeros = jnp.zeros(currents.shape[1:], jnp.float32)
    _, (spikes, membrane) = jax.lax.scan(step, (zeros, zeros), currents, unroll=options.unroll)
    return spikes, membrane


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _lif_fused(options: _FusedOptions, currents, decay, v_threshold):
    return _lif_fused_forward(options, currents, decay, v_threshold)


def _lif_fused_fwd(options, currents, decay, v_threshold):
    spikes, membrane = _lif_fused_forward(options, currents, decay, v_threshold)
    # The membrane is the only residual: spikes and surrogate slopes are recomputed from it.
    return (spikes, membrane), (membrane, decay, v_threshold, jnp.zeros((), currents.dtype))


def _lif_fused_bwd(options, residuals, cotangents):
    """Adjoint of the LIF recursion, run backwards in time.

    With ``a[t] = dL/du[t]`` (total), ``x[t] = u[t] - V_th`` and ``s[t] = H(x[t])``::

        g_s[t]  = dL/ds[t] (from the output) + a[t+1] * du[t+1]/ds[t]   (0 when detach_reset)
        a[t]    = dL/dmembrane[t] + g_s[t] * H'(x[t]) + a[t+1] * du[t+1]/du[t]
        dL/dI[t] = a[t]
        du[t+1]/du[t] = decay * (1 - s[t]) (hard) | decay (soft)
        du[t+1]/ds[t] = -decay * u[t] (hard) | -V_th (soft)
    """
    membrane, decay, v_threshold, dtype_token = residuals
    g_spikes, g_membrane = cotangents
    surrogate = options.surrogate
    hard = options.reset == "hard"
    u_prev_all = jnp.concatenate([jnp.zeros_like(membrane[:1]), membrane[:-1]])

    def step(a_next, inputs):
        u, g_s_out, g_u_out = inputs
        x = u - v_threshold
        s = fire(u, v_threshold)
        g_s = g_s_out.astype(jnp.float32)
        if not options.detach_reset:
            g_s = g_s + a_next * ((-decay * u) if hard else -v_threshold)
        through_spike = g_s * surrogate.derivative(x)
        a = g_u_out + through_spike + a_next * (decay * (1.0 - s) if hard else decay)
        return a, (a, through_spike)

    zeros = jnp.zeros(membrane.shape[1:], jnp.float32)
    _, (adjoint, through_spike) = jax.lax.scan(
        step, zeros, (membrane, g_spikes, g_membrane), reverse=True, unroll=options.unroll
    )
    s_prev = fire(u_prev_all, v_threshold)
    if hard:
        d_decay_full = adjoint * u_prev_all * (1.0 - s_prev)
        d_threshold_full = -through_spike
    else:
        d_decay_full = adjoint * u_prev_all
        d_threshold_full = -through_spike - adjoint * s_prev
    # u[-1] = 0 and s[-1] = 0 make the t = 0 terms vanish, as in the forward recursion.
    d_currents = adjoint.astype(dtype_token.dtype)
    return (d_currents, _sum_to_shape(d_decay_full, decay.shape), _sum_to_shape(d_threshold_full, v_threshold.shape))


_lif_fused.defvjp(_lif_fused_fwd, _lif_fused_bwd)


def _sum_to_shape(full: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Sum a ``[T, B, ...]`` gradient down to the broadcast-compatible ``shape`` of a parameter."""
    lead = full.ndim - len(shape)
    reduced = full.sum(axis=tuple(range(lead))) if lead else full
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and reduced.shape[i] != 1)
    return reduced.sum(axis=keep, keepdims=True) if keep else reduced


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
    return lif(
        currents,
        decay=1.0,
        v_threshold=v_threshold,
        reset=reset,
        detach_reset=detach_reset,
        surrogate=surrogate,
        return_membrane=return_membrane,
        unroll=unroll,
    )


def plif_decay(logit: jax.Array) -> jax.Array:
    """PLIF's learnable decay ``sigmoid(w)`` in (0, 1) (Fang et al. 2021 use ``1 - 1/tau``)."""
    return jax.nn.sigmoid(logit)


# --------------------------------------------------------------------------- parallel spiking neurons
#
# PSN (Fang et al., NeurIPS 2023, "Parallel Spiking Neurons with High Efficiency and Ability to Learn
# Long-term Dependencies"; SpikingJelly's ``neuron.PSN``, ``MaskedPSN``, ``SlidingPSN``): no membrane
# recursion and no reset, so the whole time axis is one matmul and no scan::
#
#     H = W X + b,    S = Heaviside(H)        W [T, T] over time, b [T] (the negated thresholds)
#
# ``masked``: W is multiplied by ``lambda * M_k + (1 - lambda) * J`` (``M_k`` the lower band of width k:
# step t sees steps t-k+1 .. t; ``J`` all ones). ``sliding``: W is the banded Toeplitz matrix of k taps
# ``w[0..k-1]`` (``H[t] = sum_i w[i] X[t-k+1+i] + b``), built for whatever T the input has.

PSN_VARIANTS = ("full", "masked", "sliding")
PSN_BIAS_INIT = -1.0  # SpikingJelly: nn.init.constant_(bias, -1), i.e. a threshold of 1
# How a PSN starts. "lif": as the network's LIF neuron without reset (W[t, s] = decay^(t-s) for s <= t,
# b = -v_threshold), which the PSN generalises; "spikingjelly": SpikingJelly's random W and b = -1.
# In a plain Spiking ResNet18 only "lif" trains (docs/training_options.md, "Why PSN starts as a LIF").
PSN_INITS = ("lif", "spikingjelly")


def psn_weight_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """SpikingJelly's ``kaiming_uniform_(weight, a=sqrt(5))`` of a PSN weight ``[T, T]`` (or ``[1, k]``).

    PyTorch's fan-in is ``shape[-1]`` and the gain ``sqrt(2 / (1 + a^2)) = sqrt(1/3)``, so the bound
    ``gain * sqrt(3 / fan_in)`` is ``1 / sqrt(fan_in)``: ``U(-1/sqrt(T), 1/sqrt(T))``.
    """
    bound = 1.0 / math.sqrt(shape[-1])
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def psn_lif_weight(time_steps: int, decay: float) -> jax.Array:
    """The ``[T, T]`` weight of a LIF neuron without reset, float32: ``W[t, s] = decay^(t - s)`` for
    ``s <= t``, else 0, so that ``H[t] = sum_{s <= t} decay^(t - s) X[s] + b`` is its membrane potential
    (``u[t] = decay * u[t-1] + X[t]``, ``u[-1] = 0``)."""
    lag = jnp.arange(time_steps)[:, None] - jnp.arange(time_steps)[None, :]
    return jnp.where(lag >= 0, jnp.float32(decay) ** jnp.maximum(lag, 0), 0.0).astype(jnp.float32)


def sliding_psn_lif_taps(order: int, decay: float) -> jax.Array:
    """The ``k`` sliding taps of a LIF neuron without reset truncated to ``k`` steps, float32 ``[k]``:
    ``(..., decay^2, decay, 1)`` (tap ``k - 1`` weighs the current step)."""
    return jnp.asarray([decay ** (order - 1 - i) for i in range(order)], jnp.float32)


def sliding_psn_exp_init(order: int) -> jax.Array:
    """SpikingJelly's ``exp_init`` of the ``k`` sliding taps: ``(..., 1/4, 1/2, 1)``, float32 ``[k]``."""
    return jnp.asarray([2.0 ** -(order - 1 - i) for i in range(order)], jnp.float32)


def psn_mask(time_steps: int, order: int) -> jax.Array:
    """MaskedPSN's ``M_k`` float32 ``[T, T]``: ``M[i, j] = 1`` where ``j <= i <= j + k - 1``, else 0
    (SpikingJelly's ``mask0 = tril(J) * triu(J, -(k - 1))``)."""
    if order < 1:
        raise ValueError(f"the masked PSN needs an order k >= 1, got {order}")
    i = jnp.arange(time_steps)[:, None]
    j = jnp.arange(time_steps)[None, :]
    return ((j <= i) & (i <= j + order - 1)).astype(jnp.float32)


def ramped_psn_lambda(epoch: float | jax.Array, lambda_epochs: float) -> float | jax.Array:
    """The masked PSN's ``lambda`` at the 1-based ``epoch`` of a linear ramp over ``lambda_epochs`` (> 0):
    ``min(1, epoch / lambda_epochs)`` (SpikingJelly's example: ``lambda_ = (epoch + 1) / epochs``, 0-based).
    A Python float for a Python ``epoch`` (static uses: export, MAC counts), else a float32 array."""
    if isinstance(epoch, (int, float)):
        return min(float(epoch) / float(lambda_epochs), 1.0)
    return jnp.minimum(jnp.asarray(epoch, jnp.float32) / float(lambda_epochs), 1.0)


def masked_psn_weight(weight: jax.Array, order: int, lam: float | jax.Array = 1.0) -> jax.Array:
    """``(lambda * M_k + (1 - lambda) * J) * W`` for ``weight`` ``[T, T]`` (SpikingJelly's ``masked_weight``;
    ``lambda = 1`` is ``M_k * W`` exactly, ``lambda = 0`` the full PSN)."""
    mask = psn_mask(weight.shape[0], order)
    lam = jnp.asarray(lam, jnp.float32)
    return (lam * mask + (1.0 - lam)) * weight.astype(jnp.float32)


def sliding_psn_matrix(taps: jax.Array, time_steps: int) -> jax.Array:
    """The ``[T, T]`` matrix of SlidingPSN's ``k`` taps for any ``T`` (SpikingJelly's ``gen_gemm_weight``):
    ``M[t, j] = taps[k - 1 - (t - j)]`` where ``0 <= t - j < k``, else 0."""
    order = taps.shape[0]
    lag = jnp.arange(time_steps)[:, None] - jnp.arange(time_steps)[None, :]
    inside = (lag >= 0) & (lag < order)
    return jnp.where(inside, taps.astype(jnp.float32)[jnp.clip(order - 1 - lag, 0, order - 1)], 0.0)


def psn(
    currents: jax.Array,
    weight: jax.Array,
    bias: jax.Array,
    surrogate: surrogates_lib.Surrogate = DEFAULT_SURROGATE,
    *,
    return_membrane: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Parallel spiking neurons over the time axis 1 of ``currents``: one matmul over time, no scan.

    ``H[b, t, ...] = sum_s weight[t, s] * currents[b, s, ...] + bias[t]``, spikes ``H > 0`` (fired
    with :func:`fire` at threshold 0, gradient ``surrogate``). SpikingJelly fires at ``H >= 0``; the
    two differ only where ``H`` is exactly 0.

    Args:
      currents: input ``X``, shape ``[B, T, ...]`` (any trailing feature shape).
      weight: ``W`` ``[T, T]`` (row ``t``: how step ``t`` weighs every step).
      bias: ``b`` ``[T]`` (per step) or ``[]`` (shared), the negated thresholds.
      surrogate: the spike's surrogate gradient (static); the timing-dependent STDB is refused.
      return_membrane: also return ``H`` (float32 ``[B, T, ...]``).

    Returns:
      spikes ``[B, T, ...]`` in ``currents.dtype`` (0/1), or ``(spikes, H)``.
    """
    if currents.ndim < 2:
        raise ValueError(f"currents must be [B, T, ...], got shape {currents.shape}")
    steps = currents.shape[1]
    if weight.shape != (steps, steps):
        raise ValueError(
            f"the PSN weight has shape {weight.shape}; input with T={steps} steps needs ({steps}, {steps})"
        )
    if bias.ndim > 1 or (bias.ndim == 1 and bias.shape[0] != steps):
        raise ValueError(f"the PSN bias has shape {bias.shape}; expected ({steps},) or ()")
    if surrogate.timing_dependent:
        raise ValueError(f"the {surrogate.name!r} surrogate needs spike timing; PSN neurons have none: choose another")
    h = jnp.einsum("ts,bs...->bt...", weight.astype(jnp.float32), currents.astype(jnp.float32))
    b = jnp.asarray(bias, jnp.float32)
    h = h + (b.reshape((1, steps) + (1,) * (currents.ndim - 2)) if b.ndim == 1 else b)
    spikes = fire(h, 0.0, surrogate).astype(currents.dtype)
    return (spikes, h) if return_membrane else spikes


def masked_psn(
    currents: jax.Array,
    weight: jax.Array,
    bias: jax.Array,
    order: int,
    lam: float | jax.Array = 1.0,
    surrogate: surrogates_lib.Surrogate = DEFAULT_SURROGATE,
    *,
    return_membrane: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Masked PSN: :func:`psn` with ``W`` replaced by :func:`masked_psn_weight` ``(W, k, lambda)``.

    Shapes as :func:`psn` (``weight [T, T]``, ``bias [T]``); ``order`` is ``k`` (step ``t`` sees
    ``t-k+1 .. t`` once ``lambda = 1``), ``lam`` the masking progress in ``[0, 1]``.
    """
    return psn(currents, masked_psn_weight(weight, order, lam), bias, surrogate, return_membrane=return_membrane)


def sliding_psn(
    currents: jax.Array,
    taps: jax.Array,
    bias: jax.Array,
    surrogate: surrogates_lib.Surrogate = DEFAULT_SURROGATE,
    *,
    return_membrane: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Sliding PSN: ``H[t] = sum_{i<k} taps[i] * X[t - k + 1 + i] + bias`` (``X[<0] = 0``), for any ``T``.

    ``currents [B, T, ...]``, ``taps [k]``, ``bias []`` (SpikingJelly's scalar bias); computed as
    :func:`psn` with :func:`sliding_psn_matrix` ``(taps, T)`` (SpikingJelly's ``gemm`` backend).
    """
    if currents.ndim < 2:
        raise ValueError(f"currents must be [B, T, ...], got shape {currents.shape}")
    matrix = sliding_psn_matrix(taps, currents.shape[1])
    return psn(currents, matrix, bias, surrogate, return_membrane=return_membrane)
