"""Activation modules shared by ANN and SNN models.

Models run convolutions and batch norm on the merged ``[B*T, ...]`` view of a batch-major
``[B, T, ...]`` tensor. Every activation module therefore takes that merged tensor plus the number
of time steps ``T`` and returns the same shape: :class:`ReLU` ignores ``T``, :class:`SpikingNeuron`
unmerges to ``[B, T, ...]``, runs the neuron scan over ``T`` and merges back. Swapping the
activation is all it takes to turn the ANN teacher into its spiking twin: both have the same
parameter tree (PLIF adds one learnable decay per layer; :class:`ParallelSpikingNeuron`, PSN, adds a
time weight and bias per layer, which a transplant or an ANN-to-SNN copy keeps at initialisation).

Spiking layers ``sow`` their mean firing rate into the ``"spike_stats"`` collection; call
``model.apply(..., mutable=["spike_stats"])`` to get per-layer rates alongside the logits.

One time step at a time (SLTT, :mod:`snnjax.train.sltt`): a model applied with ``time_steps=1`` and
the ``"neuron_state"`` collection mutable runs each :class:`SpikingNeuron` for ONE step from the
membrane ``u`` and last spike ``s`` stored there (zeros when absent), under ``stop_gradient``, and
writes the new ones back; without that collection mutable the layer is the usual time scan.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from snnjax import epoch_clock, neurons
from snnjax import surrogates as surrogates_lib

NEURON_STATE = "neuron_state"  # the per-step mode's collection: {"u", "s"} of every SpikingNeuron


def merge_time(x: jax.Array) -> jax.Array:
    """``[B, T, ...] -> [B*T, ...]`` (batch-major, so a sharded B axis needs no collective)."""
    return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])


def split_time(x: jax.Array, time_steps: int) -> jax.Array:
    """``[B*T, ...] -> [B, T, ...]``."""
    if x.shape[0] % time_steps:
        raise ValueError(f"leading axis {x.shape[0]} is not a multiple of time_steps={time_steps}")
    return x.reshape((x.shape[0] // time_steps, time_steps) + x.shape[1:])


class ReLU(nn.Module):
    """ANN activation; ``time_steps`` is accepted and ignored."""

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int = 1) -> jax.Array:
        del time_steps
        return nn.relu(x)


class SpikingNeuron(nn.Module):
    """LIF / IF / PLIF neurons applied to a merged ``[B*T, ...]`` current; returns spikes.

    Attributes:
      decay: membrane decay per step (0.25 in IDSNN; 1.0 for IF). The initial value for PLIF.
      v_threshold: firing threshold (membrane-potential units).
      reset: ``"hard"`` or ``"soft"``.
      detach_reset: no gradient through the reset term.
      surrogate: surrogate gradient of the spike.
      learnable_decay: PLIF: the decay is ``sigmoid(w)`` of a scalar parameter ``decay_logit``.
      unroll: ``lax.scan`` unroll factor over time (``True`` = fully unrolled).
      impl: ``"scan"`` or ``"fused"`` (one custom VJP over time, less memory; see
        :func:`snnjax.neurons.lif`).

    Called with ``"neuron_state"`` mutable (not at ``init``), the layer is one step of the same
    dynamics (:func:`snnjax.neurons.charge` and :func:`snnjax.neurons.fire`) from the stored state,
    whose gradient is stopped: the spatial path only (SLTT). ``time_steps`` must then be 1.
    """

    emits_spikes = True  # counted as a spiking layer by snnjax.analysis (a class attribute, not a field)
    decay: float = 0.25
    v_threshold: float = 0.5
    reset: neurons.Reset = "hard"
    detach_reset: bool = True
    surrogate: surrogates_lib.Surrogate = neurons.DEFAULT_SURROGATE
    learnable_decay: bool = False
    unroll: int | bool = 1
    impl: neurons.Impl = "scan"

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int) -> jax.Array:
        decay = self.decay
        if self.learnable_decay:
            if not 0.0 < self.decay < 1.0:
                raise ValueError(f"PLIF needs an initial decay in (0, 1), got {self.decay}")
            logit = self.param("decay_logit", nn.initializers.constant(math.log(self.decay / (1 - self.decay))), ())
            decay = neurons.plif_decay(logit)
        if self.is_mutable_collection(NEURON_STATE) and not self.is_initializing():
            return self._one_step(x, time_steps, decay)
        spikes = neurons.lif(
            split_time(x, time_steps),
            decay=decay,
            v_threshold=self.v_threshold,
            reset=self.reset,
            detach_reset=self.detach_reset,
            surrogate=self.surrogate,
            unroll=self.unroll,
            impl=self.impl,
        )
        self.sow("spike_stats", "firing_rate", jnp.mean(spikes, dtype=jnp.float32))
        return merge_time(spikes)

    def _one_step(self, x: jax.Array, time_steps: int, decay) -> jax.Array:
        """``s[t]`` from ``I[t] = x`` and the stored ``(u[t-1], s[t-1])`` (zeros at first), which it
        replaces by ``(u[t], s[t])``; no gradient reaches the stored state (no temporal gradient)."""
        if time_steps != 1:
            raise ValueError(
                f"a SpikingNeuron with mutable {NEURON_STATE!r} runs one step: time_steps must be 1, got {time_steps}"
            )
        u_var = self.variable(NEURON_STATE, "u", jnp.zeros, x.shape, jnp.float32)
        s_var = self.variable(NEURON_STATE, "s", jnp.zeros, x.shape, jnp.float32)
        u_prev, s_prev = jax.lax.stop_gradient(u_var.value), jax.lax.stop_gradient(s_var.value)
        v_threshold = jnp.asarray(self.v_threshold, jnp.float32)
        decay = jnp.asarray(decay, jnp.float32)
        u = neurons.charge(u_prev, s_prev, x, decay=decay, v_threshold=v_threshold, reset=self.reset)
        s = neurons.fire(u, v_threshold, self.surrogate)
        u_var.value, s_var.value = jax.lax.stop_gradient(u), jax.lax.stop_gradient(s)
        spikes = s.astype(x.dtype)
        self.sow("spike_stats", "firing_rate", jnp.mean(spikes, dtype=jnp.float32))
        return spikes


class ParallelSpikingNeuron(nn.Module):
    """Parallel spiking neurons (PSN, Fang et al. 2023) on a merged ``[B*T, ...]`` current; returns spikes.

    ``H = W X + b`` over time in one matmul (:func:`snnjax.neurons.psn`), spikes ``H > 0``. Parameters
    (SpikingJelly's names):

    * ``"full"``: ``weight [T, T]``, ``bias [T]``;
    * ``"masked"``: the same two, ``W`` masked to the lower band of width ``order`` with progress ``lam``
      (:func:`snnjax.neurons.masked_psn_weight`), fixed, or with ``lambda_epochs > 0`` ramped as the
      PSN paper trains it: ``lambda = min(1, e / lambda_epochs)`` at the 1-based epoch ``e`` the engine
      feeds (:mod:`snnjax.epoch_clock`; SpikingJelly's example sets ``lambda_ = (epoch + 1) / epochs``);
    * ``"sliding"``: ``weight [order]`` (taps), ``bias []``; runs at any ``T``.

    Initialisation (``init_scheme``): ``"lif"`` starts the neuron as a LIF neuron without reset of this
    ``decay`` and ``v_threshold`` (``W[t, s] = decay^(t-s)`` for ``s <= t``, taps ``(..., decay, 1)``,
    ``b = -v_threshold``); ``"spikingjelly"`` as SpikingJelly does (``W ~ U(-1/sqrt(T), 1/sqrt(T))``,
    taps ``(..., 1/4, 1/2, 1)``, ``b = -1``). The full and masked weights are ``T x T``: variables made
    for one ``T`` refuse another.

    Attributes:
      variant: ``"full"``, ``"masked"`` or ``"sliding"``.
      order: ``k`` of the masked and sliding variants.
      lam: the masked variant's fixed ``lambda`` in ``[0, 1]`` (1: fully masked), used when
        ``lambda_epochs`` is 0.
      lambda_epochs: the masked variant's ramp: ``lambda`` reaches 1 after this many epochs (0: fixed ``lam``).
      surrogate: surrogate gradient of the spike.
      init_scheme: ``"lif"`` or ``"spikingjelly"`` (see above).
      decay: the ``"lif"`` init's decay per step (the LIF neuron's 0.25).
      v_threshold: the ``"lif"`` init's threshold (``b = -v_threshold``).
    """

    emits_spikes = True  # counted as a spiking layer by snnjax.analysis (a class attribute, not a field)
    variant: str = "full"
    order: int = 2
    lam: float = 1.0
    lambda_epochs: float = 0.0
    surrogate: surrogates_lib.Surrogate = neurons.DEFAULT_SURROGATE
    init_scheme: str = "lif"
    decay: float = 0.25
    v_threshold: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int) -> jax.Array:
        if self.variant not in neurons.PSN_VARIANTS:
            raise ValueError(f"unknown PSN variant {self.variant!r}; choose one of {list(neurons.PSN_VARIANTS)}")
        if self.init_scheme not in neurons.PSN_INITS:
            raise ValueError(f"unknown PSN init {self.init_scheme!r}; choose one of {list(neurons.PSN_INITS)}")
        currents = split_time(x, time_steps)
        as_lif = self.init_scheme == "lif"
        bias_init = nn.initializers.constant(-float(self.v_threshold) if as_lif else neurons.PSN_BIAS_INIT)
        if self.variant == "sliding":
            order = int(self.order)
            taps_init = (
                neurons.sliding_psn_lif_taps(order, self.decay) if as_lif else neurons.sliding_psn_exp_init(order)
            )
            taps = self.param("weight", lambda _key: taps_init)
            bias = self.param("bias", bias_init, ())
            spikes = neurons.sliding_psn(currents, taps, bias, self.surrogate)
        else:
            if self.has_variable("params", "weight"):
                trained = self.get_variable("params", "weight").shape[0]
                if trained != time_steps:
                    raise ValueError(
                        f"{self.variant} PSN weights are {trained} x {trained} (T={trained}) but the input has "
                        f"T={time_steps}: a {self.variant} PSN runs at its training T only; "
                        "use psn_variant='sliding' to change T at inference"
                    )
            if as_lif:
                weight_init = lambda _key, shape: neurons.psn_lif_weight(shape[0], self.decay)  # noqa: E731
            else:
                weight_init = neurons.psn_weight_init
            weight = self.param("weight", weight_init, (time_steps, time_steps))
            bias = self.param("bias", bias_init, (time_steps,))
            if self.variant == "masked":
                lam = self.lam
                if self.lambda_epochs > 0:
                    lam = neurons.ramped_psn_lambda(epoch_clock.variable(self), self.lambda_epochs)
                spikes = neurons.masked_psn(currents, weight, bias, int(self.order), lam, self.surrogate)
            else:
                spikes = neurons.psn(currents, weight, bias, self.surrogate)
        self.sow("spike_stats", "firing_rate", jnp.mean(spikes, dtype=jnp.float32))
        return merge_time(spikes)


# A module factory ``(name=...) -> module`` whose module maps ``(x [B*T, ...], T) -> same``.
ActivationFactory = Callable[..., nn.Module]


def fold_batch_norm(kernel, bias, scale, offset, mean, var, epsilon: float = 1e-5):
    """``(W', b')`` with ``conv(x, W') + b' == BN_inference(conv(x, W) + b)``: THE batch-norm fold.

    ``W' = W * a``, ``b' = a * (b - mean) + offset``, ``a = scale / sqrt(var + eps)`` per output
    channel; ``kernel`` is ``[..., Cout]`` (e.g. Flax's ``[kh, kw, Cin, Cout]``), the others ``[Cout]``;
    ``bias=None`` means 0. NumPy arrays in, NumPy out (in their dtype, e.g. float64 for an export);
    JAX arrays (traced or not) in, JAX out.
    """
    sqrt = np.sqrt if isinstance(var, np.ndarray) else jnp.sqrt
    a = scale / sqrt(var + epsilon)
    bias = 0.0 * mean if bias is None else bias
    return kernel * a, a * (bias - mean) + offset
