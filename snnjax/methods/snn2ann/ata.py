"""Adaptive threshold adjustment (ATA) of SNN2ANN: raise thresholds while spikes are noisy.

A *noisy spike* is a spike count ``n > 0`` of a neuron whose ANN twin outputs ``ReLU(.) = 0``: the
SNN fires where the ANN says it should not. After every training iteration, per layer::

    r   = mean over the batch and all neurons of 1[relu_out == 0 and n > 0]
    Vth <- m * Vth + (1 - m) * (Vth + step * 1[r > tolerance])

with ``m = 0.9``, ``step = 0.1``, ``tolerance = 0.1`` (official code), i.e. every threshold of the
layer rises by ``(1 - m) * step = 0.01`` when more than 10% of its outputs are noisy, and stays
put otherwise: thresholds never decrease.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class AtaConfig:
    """ATA constants (hashable: a static module attribute).

    Attributes:
      tolerance: the noisy-spike ratio above which the layer's thresholds rise (0.1).
      step: threshold increment of the target ``Vth + step`` (0.1, membrane-potential units).
      momentum: weight ``m`` of the old threshold in the moving average (0.9).
    """

    tolerance: float = 0.1
    step: float = 0.1
    momentum: float = 0.9

    def __post_init__(self):
        if not 0.0 <= self.tolerance <= 1.0:
            raise ValueError(
                f"ATA tolerance must be a ratio in [0, 1], got {self.tolerance} (config.model.ata_tolerance)"
            )
        if self.step < 0:
            raise ValueError(f"ATA step must be >= 0 (thresholds only rise), got {self.step} (config.model.ata_step)")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"ATA momentum must be in [0, 1), got {self.momentum} (config.model.ata_momentum)")


def noisy_spike_ratio(relu_out: jax.Array, spike_count: jax.Array) -> jax.Array:
    """Fraction (float32 scalar) of entries where the ANN is silent but the SNN fired.

    Args:
      relu_out: the ANN branch's ReLU output ``[B, ...]`` (after BN, pooling and dropout).
      spike_count: the SNN branch's spike count of the same neurons ``[B, ...]``.
    """
    if relu_out.shape != spike_count.shape:
        raise ValueError(
            f"noisy_spike_ratio: relu_out {relu_out.shape} and spike_count {spike_count.shape} must have the same shape"
        )
    noisy = (relu_out <= 0) & (spike_count > 0)
    return jnp.mean(noisy, dtype=jnp.float32)


def ata_update(v_threshold: jax.Array, ratio: jax.Array, config: AtaConfig = AtaConfig()) -> jax.Array:
    """The thresholds after one ATA step given the layer's noisy-spike ``ratio`` (same shape)."""
    raise_now = jax.lax.stop_gradient(ratio > config.tolerance).astype(v_threshold.dtype)
    # m*V + (1-m)*(V + step*raise) written as V + (1-m)*step*raise: the same value, but exact when
    # nothing is raised (m*V + (1-m)*V can round one ulp *down*, and thresholds must never fall).
    return v_threshold + (1.0 - config.momentum) * config.step * raise_now
