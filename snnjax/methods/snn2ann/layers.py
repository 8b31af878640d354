"""The two-branch building blocks of SNN2ANN: one conv + BN read by an SNN and an ANN branch.

Every layer owns ONE convolution and ONE batch norm (one parameter tree). Two forward branches
read it:

- SNN branch (no gradient): the BN is folded from its *running* statistics into the conv
  (:func:`snnjax.layers.fold_batch_norm`); the per-step input current is ``conv(s[t], W') + b' / T`` (the bias is
  split over the ``T`` steps, so the current summed over time equals the ANN's pre-activation in
  inference mode); IF neurons with per-neuron thresholds ``Vth`` integrate it
  (``mem += I``, spike = ``mem > Vth``, hard reset to 0) and count their spikes.
- ANN branch (one pass, trained): ``conv -> BN (batch statistics in training) -> [pool] ->
  dropout -> ReLU -> spiking mapping unit`` whose output is the SNN's spike count
  (:mod:`snnjax.methods.snn2ann.mapping`).

Shapes: SNN tensors are batch-major ``[B, T, H, W, C]`` (a static image ``[B, H, W, C]`` is the
first layer's direct input, fed at every step); ANN tensors are ``[B, H, W, C]``. The thresholds
``Vth`` have shape ``[H, W, C]`` (Flax layout of the official ``(C, H, W)``), live in the
non-parameter collection ``"thresholds"`` (carried and checkpointed by the engine in
``TrainState.model_state``) and change only through ATA (:mod:`snnjax.methods.snn2ann.ata`).
"""

from __future__ import annotations

import math
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax import layers as snn_layers
from snnjax import neurons
from snnjax.methods.snn2ann import ata as ata_lib
from snnjax.methods.snn2ann import mapping as mapping_lib
from snnjax.methods.snn2ann import masks as masks_lib
from snnjax.models import initializers
from snnjax.models.conv import conv_auto_grad

THRESHOLDS = "thresholds"  # the variable collection holding every layer's Vth
# The IF loop is unrolled only up to this many steps. Measured on the 2-core CPU (the loop alone,
# [32, T, 32, 32, 64] currents, membrane dropout 0.5): T = 4 unrolled 34-53 ms vs scanned 91-136 ms,
# T = 8 about equal (~190 ms), T = 16 unrolled 916-1035 ms vs scanned 316-385 ms (and the whole
# SNN2ANN step at T = 16 unrolled took 3.8x the T = 8 step; docs/snn2ann.md).
UNROLL_MAX_STEPS = 8
Pool = Literal["max", "avg"]


def conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, strides: int) -> jax.Array:
    """PyTorch-style convolution (symmetric padding ``(k-1)//2``): ``[N, H, W, Cin] -> [N, H', W', Cout]``.

    XLA's convolution, with the kernel gradient of :func:`snnjax.models.conv.conv_auto_grad` (the
    BPTT baseline's too): split over batch pieces on CPU with YNNPACK convolutions, XLA's own
    elsewhere; equal to XLA's up to float summation order.
    """
    pad = (kernel.shape[0] - 1) // 2
    y = conv_auto_grad(
        x,
        kernel.astype(x.dtype),
        (strides, strides),
        ((pad, pad), (pad, pad)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    return y if bias is None else y + bias


def pool2x2(x: jax.Array, kind: Pool) -> jax.Array:
    """2x2 stride-2 pooling of ``[N, H, W, C]``."""
    if kind == "max":
        return nn.max_pool(x, (2, 2), (2, 2))
    if kind == "avg":
        return nn.avg_pool(x, (2, 2), (2, 2))
    raise ValueError(f"unknown pooling {kind!r}; use 'M' (max) or 'A' (average) in config.model.layers")


def pool_over_time(x: jax.Array, kind: Pool) -> jax.Array:
    """:func:`pool2x2` of every step of ``[B, T, H, W, C]``."""
    return snn_layers.split_time(pool2x2(snn_layers.merge_time(x), kind), x.shape[1])


class SharedConvBN(nn.Module):
    """One conv + BN read by both branches.

    Parameters ``conv_kernel [k, k, Cin, F]``, ``conv_bias [F]`` (if ``use_bias``), ``bn_scale [F]``,
    ``bn_bias [F]``; BN running statistics ``bn_mean``, ``bn_var`` in ``"batch_stats"``.

    Attributes:
      features: output channels ``F``.
      kernel_size: ``k`` (3, or 1 for ResNet shortcuts).
      strides: convolution stride.
      use_bias: conv bias (the official code has one).
      momentum: Flax BN momentum (0.9 = PyTorch's 0.1).
      epsilon: BN epsilon.
      weight_init: ``kaiming_fan_out`` (He normal over fan-out, bias 0) or ``pytorch`` (PyTorch's default
        conv init, kernel and bias U(+-1/sqrt(fan_in)): the official code with kaiming_norm off);
        see :mod:`snnjax.models.initializers`.
    """

    features: int
    kernel_size: int = 3
    strides: int = 1
    use_bias: bool = True
    momentum: float = 0.9
    epsilon: float = 1e-5
    weight_init: str = "kaiming_fan_out"

    @nn.compact
    def __call__(
        self, snn_in: jax.Array, ann_in: jax.Array | None, *, time_steps: int, train: bool
    ) -> tuple[jax.Array, jax.Array | None]:
        """``(snn_current [B, T, H', W', F], ann_preactivation [B, H', W', F] or None)``.

        Args:
          snn_in: SNN input spikes ``[B, T, H, W, Cin]`` or a static image ``[B, H, W, Cin]``.
          ann_in: ANN input ``[B, H, W, Cin]`` (previous spike counts, or the image), or ``None``
            to run the SNN branch only.
          time_steps: ``T``.
          train: the ANN's BN uses batch statistics and updates the running ones.
        """
        f, k = self.features, self.kernel_size
        fan_in = k * k * snn_in.shape[-1]
        kernel = self.param("conv_kernel", initializers.conv_kernel(self.weight_init), (k, k, snn_in.shape[-1], f))
        bias = self.param("conv_bias", initializers.bias(self.weight_init, fan_in), (f,)) if self.use_bias else None
        scale = self.param("bn_scale", nn.initializers.ones, (f,))
        offset = self.param("bn_bias", nn.initializers.zeros, (f,))
        ra_mean = self.variable("batch_stats", "bn_mean", jnp.zeros, (f,))
        ra_var = self.variable("batch_stats", "bn_var", jnp.ones, (f,))

        # The SNN reads the running statistics before this step's ANN pass updates them.
        w, b = jax.lax.stop_gradient(
            snn_layers.fold_batch_norm(kernel, bias, scale, offset, ra_mean.value, ra_var.value, self.epsilon)
        )
        b = b / time_steps
        x = jax.lax.stop_gradient(snn_in)
        if x.ndim == 4:  # direct encoding: the same current at every step, computed once
            current = conv2d(x, w, b, self.strides)
            snn_current = jnp.broadcast_to(current[:, None], (current.shape[0], time_steps) + current.shape[1:])
        elif x.ndim == 5:
            snn_current = snn_layers.split_time(conv2d(snn_layers.merge_time(x), w, b, self.strides), time_steps)
        else:
            raise ValueError(f"SNN input must be [B, H, W, C] or [B, T, H, W, C], got shape {x.shape}")
        if ann_in is None:
            return snn_current, None

        y = conv2d(ann_in, kernel, bias, self.strides)
        if train:
            mean = jnp.mean(y, axis=(0, 1, 2))
            var = jnp.mean(jnp.square(y - mean), axis=(0, 1, 2))
            if not self.is_initializing():
                m = self.momentum
                ra_mean.value = m * ra_mean.value + (1 - m) * jax.lax.stop_gradient(mean)
                ra_var.value = m * ra_var.value + (1 - m) * jax.lax.stop_gradient(var)
        else:
            mean, var = ra_mean.value, ra_var.value
        ann_preact = (y - mean) * (scale / jnp.sqrt(var + self.epsilon)) + offset
        return snn_current, ann_preact


def if_neurons_membrane_dropout(
    current: jax.Array, vth: jax.Array, *, rate: float, key: jax.Array | None, unroll: bool = True
) -> jax.Array:
    """IF neurons (``mem += I``, spike = ``mem > Vth``, hard reset to 0) over axis 1 of ``current``
    ``[B, T, ...]``, with dropout of rate ``rate`` on the membrane carried to the next step.

    The official ``module.py`` IF keeps ``mem = dropout(mp * (1 - spike), p, training)`` after every
    step: in training each neuron's remaining membrane is zeroed with probability ``rate`` and
    otherwise scaled by ``1 / (1 - rate)``, independently per step (``key``); ``key=None`` or
    ``rate=0`` is the plain IF neuron. Float32 spikes ``[B, T, ...]``, no gradient.

    The keep masks come from packed random bits (:mod:`snnjax.methods.snn2ann.masks`: step ``t``'s
    mask is ``unpack_keep(draw_words(key, 1 - rate, T, B * prod(...))[t], 1 - rate, [B, ...])``),
    unpacked inside the time loop, so only one step's mask exists at a time.

    ``unroll=True`` (default) runs the ``T`` steps as straight-line code on the batch-major
    slices ``current[:, t]`` and stacks the spikes on axis 1 (the BPTT baseline's LIF does the
    same with ``unroll=0``) when ``T <= UNROLL_MAX_STEPS``: no ``[B, T] <-> [T, B]`` transposes
    of the current and the spikes, no while loop, and XLA fuses the steps' elementwise work.
    Longer ``T`` (where the unrolled loop measured slower) and ``False``: one ``lax.scan``. The
    arithmetic is the same either way.
    """
    current = jax.lax.stop_gradient(current).astype(jnp.float32)
    steps = current.shape[1]
    step_shape = (current.shape[0],) + current.shape[2:]
    keep = 1.0 - rate
    if key is None or rate == 0.0:
        words = jnp.zeros((steps, 0), jnp.uint32)
        mask_of = lambda w: jnp.ones((), jnp.float32)  # noqa: E731
    else:
        words = masks_lib.draw_words(key, keep, steps, math.prod(step_shape))
        mask_of = lambda w: masks_lib.unpack_keep(w, keep, step_shape).astype(jnp.float32) / keep  # noqa: E731

    def step(carry, inputs):
        # The previous step's dropout mask scales the membrane it kept: a hard-reset charge whose
        # decay is that mask (mem = mp * (1 - spike) * mask, then mp = mem + I). Each step's mask is
        # unpacked from its packed random words here, so no [T, B, ...] mask ever exists.
        u_prev, s_prev, mask_prev = carry
        i_t, words_t = inputs
        u = neurons.charge(u_prev, s_prev, i_t, decay=mask_prev, v_threshold=vth, reset="hard")
        s = neurons.fire(u, vth)
        return (u, s, mask_of(words_t)), s

    zeros = jnp.zeros(step_shape, jnp.float32)
    ones = jnp.ones(jax.eval_shape(mask_of, words[0]).shape, jnp.float32)
    if unroll and steps <= UNROLL_MAX_STEPS:
        carry, spikes = (zeros, zeros, ones), []
        for t in range(steps):
            carry, s = step(carry, (current[:, t], words[t]))
            spikes.append(s)
        return jnp.stack(spikes, axis=1)
    _, spikes = jax.lax.scan(step, (zeros, zeros, ones), (jnp.moveaxis(current, 1, 0), words))
    return jnp.moveaxis(spikes, 0, 1)


def threshold_init(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Per-neuron thresholds drawn uniformly from [0, 1) (official ``torch.rand``)."""
    return jax.random.uniform(key, shape, jnp.float32)


class MappedIFNeuron(nn.Module):
    """IF neurons with per-neuron thresholds (SNN branch) + their spiking mapping unit (ANN branch).

    Attributes:
      mapping_unit: ``"stsu"`` or ``"resu"`` (:mod:`snnjax.methods.snn2ann.mapping`).
      adapt_threshold: apply ATA in training when the ``"thresholds"`` collection is mutable.
      ata: ATA constants.
      membrane_dropout: in training, dropout of this rate on the membrane kept after every step
        (official IF module: 0.5; uses the ``dropout`` rng stream); 0 = plain IF neurons.
      unroll: run the T steps unrolled on batch-major slices when ``T <= UNROLL_MAX_STEPS`` (no
        transposes, no while loop; same spikes), else one ``lax.scan``; see
        :func:`if_neurons_membrane_dropout`.
    """

    emits_spikes = "batch_major"  # snnjax.analysis reads (spikes [B, T, ...], ...) (a class attribute)
    mapping_unit: str = "resu"
    adapt_threshold: bool = True
    ata: ata_lib.AtaConfig = ata_lib.AtaConfig()
    membrane_dropout: float = 0.0
    unroll: bool = True

    @nn.compact
    def __call__(
        self, current: jax.Array, ann_preact: jax.Array | None, *, train: bool
    ) -> tuple[jax.Array, jax.Array | None]:
        """``(spikes [B, T, ...], ann_output [B, ...] or None)``.

        Args:
          current: SNN input current ``[B, T, ...]`` (no gradient).
          ann_preact: the ANN's pre-activation ``[B, ...]`` (after BN, pooling and dropout), or
            ``None`` (SNN branch only).
          train: training mode (ATA runs only in training).
        """
        vth = self.variable(THRESHOLDS, "vth", lambda: threshold_init(self.make_rng("params"), current.shape[2:]))
        if train and self.membrane_dropout > 0.0:
            spikes = if_neurons_membrane_dropout(
                current, vth.value, rate=self.membrane_dropout, key=self.make_rng("dropout"), unroll=self.unroll
            )
        else:
            unroll = self.unroll and current.shape[1] <= UNROLL_MAX_STEPS
            spikes = jax.lax.stop_gradient(
                neurons.lif(current, decay=1.0, v_threshold=vth.value, reset="hard", unroll=unroll or 1)
            )
        count = jnp.sum(spikes, axis=1)
        self.sow("spike_stats", "firing_rate", jnp.mean(spikes, dtype=jnp.float32))
        if ann_preact is None:
            return spikes, None
        relu_out = nn.relu(ann_preact)
        ann_out = mapping_lib.get(self.mapping_unit)(relu_out, count)
        ratio = ata_lib.noisy_spike_ratio(jax.lax.stop_gradient(relu_out), count)
        self.sow("spike_stats", "noisy_ratio", ratio)
        if train and self.adapt_threshold and self.is_mutable_collection(THRESHOLDS) and not self.is_initializing():
            vth.value = ata_lib.ata_update(vth.value, ratio, self.ata)
        return spikes, ann_out
