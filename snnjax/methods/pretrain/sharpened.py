"""The sharpened ReLU of pipe-S pretraining (Lin et al., "Rethinking pretraining as a bridge from ANNs to SNNs")."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax import epoch_clock


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

    The epoch is an input fed by the training step, not a constant (:mod:`snnjax.epoch_clock`: the
    engine writes the 1-based epoch before every forward pass; evaluation reads the last value
    written, i.e. the epoch the weights were trained at).
    Call convention as every activation: ``(x [B*T, ...], time_steps) -> same shape``.
    """

    horizon_epochs: float = 200.0
    a_max: float = 0.49
    b_min: float = 0.5
    collection = epoch_clock.COLLECTION

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int = 1) -> jax.Array:
        del time_steps
        epoch = epoch_clock.variable(self)
        a, b = self.bounds(epoch)
        return _sharpened_clamp(x, a.astype(x.dtype), b.astype(x.dtype))

    def bounds(self, epoch: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(a, b)`` of the clamp at ``epoch`` (float32 scalars)."""
        progress = jnp.asarray(epoch, jnp.float32) / self.horizon_epochs
        return jnp.minimum(progress, self.a_max), jnp.maximum(1.0 - progress, self.b_min)
