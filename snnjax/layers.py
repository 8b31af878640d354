"""Activation modules shared by ANN and SNN models.

Models run convolutions and batch norm on the merged ``[B*T, ...]`` view of a batch-major
``[B, T, ...]`` tensor. Every activation module therefore takes that merged tensor plus the number
of time steps ``T`` and returns the same shape: :class:`ReLU` ignores ``T``, :class:`SpikingNeuron`
unmerges to ``[B, T, ...]``, runs the neuron scan over ``T`` and merges back. Swapping the
activation is all it takes to turn the ANN teacher into its spiking twin: both have the same
parameter tree (PLIF adds one learnable decay per layer).

Spiking layers ``sow`` their mean firing rate into the ``"spike_stats"`` collection; call
``model.apply(..., mutable=["spike_stats"])`` to get per-layer rates alongside the logits.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax import neurons
from snnjax import surrogates as surrogates_lib


class Activation(Protocol):
    """A module factory ``(name=...) -> module`` whose module maps ``(x [B*T, ...], T) -> same``."""

    def __call__(self, *, name: str | None = None) -> nn.Module: ...


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
    """

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


ActivationFactory = Callable[..., nn.Module]


# ---------------------------------------------------------------------------------------------
# Sharpened ReLU (Lin et al., "Rethinking pretraining as a bridge from ANNs to SNNs", pipe-S).
# ---------------------------------------------------------------------------------------------


@jax.custom_vjp
def _sharpened_clamp(x: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """``clamp((x - a) / (b - a), 0, 1)``; backward: ``1`` on ``0 < x < 1`` (see SharpenedReLU)."""
    return jnp.clip((x - a) / (b - a), 0.0, 1.0).astype(x.dtype)


def _sharpened_clamp_fwd(x, a, b):
    return _sharpened_clamp(x, a, b), (x, a, b)


def _sharpened_clamp_bwd(residuals, g):
    x, a, b = residuals
    # The official code's backward is the rectangular spike surrogate at V_th = 0.5 with half-width
    # 0.5 (slope 1 on 0 < x < 1), NOT the true slope 1 / (b - a), which reaches 100 near the end of
    # pretraining and would blow the gradients up. The schedule (a, b) gets no gradient.
    window = (jnp.abs(x - 0.5) < 0.5).astype(g.dtype)
    return g * window, jnp.zeros_like(a), jnp.zeros_like(b)


_sharpened_clamp.defvjp(_sharpened_clamp_fwd, _sharpened_clamp_bwd)


class SharpenedReLU(nn.Module):
    """ANN activation that sharpens towards the spike step ``H(x - 0.5)`` as pretraining goes on.

    ``y = clamp((x - a) / (b - a), 0, 1)`` with ``a = min(e / horizon, a_max)`` and
    ``b = max(1 - e / horizon, b_min)`` at (1-based) epoch ``e``: ``clamp(x, 0, 1)`` at the start,
    a ramp between 0.49 and 0.5 (almost the step at the LIF threshold 0.5) after ``horizon / 2``
    epochs. The official code pretrains 100 epochs with ``horizon = 200``; ``b_min`` only guards
    runs longer than ``horizon / 2`` epochs (there ``1 - e / horizon`` would fall below ``a``).
    The gradient is ``1`` on ``0 < x < 1`` whatever the epoch (the official backward).

    The epoch is an input fed by the training step, not a constant: it lives in the variable
    ``epoch`` (float32 scalar) of the :attr:`collection` collection, which the engine carries in
    ``TrainState.model_state`` like BN statistics. A step wrapper writes the current epoch into
    every such leaf before the forward pass (:func:`snnjax.pipelines.pretrain.feed_epoch`);
    evaluation reads the last value written, i.e. the epoch the weights were trained at.
    Call convention as every activation: ``(x [B*T, ...], time_steps) -> same shape``.
    """

    horizon_epochs: float = 200.0
    a_max: float = 0.49
    b_min: float = 0.5
    collection = "schedule"

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int = 1) -> jax.Array:
        del time_steps
        epoch = self.variable(self.collection, "epoch", lambda: jnp.zeros((), jnp.float32)).value
        a, b = self.bounds(epoch)
        return _sharpened_clamp(x, a.astype(x.dtype), b.astype(x.dtype))

    def bounds(self, epoch: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(a, b)`` of the clamp at ``epoch`` (float32 scalars)."""
        progress = jnp.asarray(epoch, jnp.float32) / self.horizon_epochs
        return jnp.minimum(progress, self.a_max), jnp.maximum(1.0 - progress, self.b_min)
