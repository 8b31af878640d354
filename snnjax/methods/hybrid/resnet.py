"""One ResNet definition for the ANN and the converted / STDB-trained SNN (hybrid conversion).

Layout of the hybrid-conversion code's ResNets (Rathi et al. 2020, ``self_models/resnet.py`` and
``resnet_spiking.py``): no batch norm, every convolution and the classifier bias-free.

* stem (the official ``pre_process``): three 3x3 convolutions at 64 channels (``stem0`` ..
  ``stem2``), each followed by the activation; dropout after the first two; then a 2x2 average pool;
* four stages of basic blocks at 64, 128, 256, 512 channels (the first block of stages 2-4 has
  stride 2), blocks per stage ``[1,1,0,0]`` (``hybrid_resnet6``), ``[1,1,1,1]`` (12), ``[2,2,2,2]``
  (20), ``[3,4,6,3]`` (34, as ``resnet_spiking.py``; the official ANN file has ``[3,4,5,3]``);
* basic block: ``act1(conv1(x)) -> dropout -> conv2``, plus the shortcut (identity, or a bias-free
  1x1 convolution with the block's stride when shape changes), into ``act2``. In the SNN the second
  membrane integrates ``conv2(spikes1) + shortcut(x)`` in the same step, as the official block;
* classifier ``head``: one bias-free linear layer on the flattened last map (512 x 2 x 2 on 32x32 or
  28x28 inputs; the size follows the input), no average pool.

The activation is a module factory as in :mod:`snnjax.methods.hybrid.vgg`: ``layers.ReLU`` gives
the ANN, :class:`~snnjax.methods.hybrid.neuron.HybridNeuron` the SNN, with the SAME parameter tree.
The SNN has one threshold per convolution of the main path (the shortcut convs have none: their
current joins ``act2``), in the official order: ``stem0, stem1, stem2``, then per block ``conv1``,
``conv2`` (:meth:`HybridResNet.spiking_layers`). Thresholds live in the ``thresholds`` collection
``{"<layer>_act": {"threshold": theta}}`` (``vgg.thresholds_to_collection``).

SNN specifics as the VGG: ``direct`` or signed ``poisson`` input (firing probability
``poisson_gain * |x|``; the official ResNet uses 0.9, its VGG 1.0), dropout masks drawn once per
forward pass and shared by all steps, logits = ``head(sum_t spikes_t)`` (the head integrates
without spiking). Parameter paths: ``stem{i}/kernel``, ``stage{s}_block{b}_conv1/kernel``,
``..._conv2/kernel``, ``..._shortcut/kernel``, ``head/kernel``. Inputs ``[B, H, W, C]`` (encoded
over ``time_steps``) or already encoded ``[B, T, H, W, C]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from snnjax import layers
from snnjax.methods.hybrid import vgg as vgg_lib
from snnjax.models import conv as conv_lib
from snnjax.models.registry import register

Dtype = Any

# Blocks per stage (official cfg of resnet_spiking.py); registry names carry a "hybrid_" prefix
# because resnet18/34/... already name the BN Spiking ResNets of snnjax.models.factory.
BLOCKS: dict[str, tuple[int, int, int, int]] = {
    "hybrid_resnet6": (1, 1, 0, 0),
    "hybrid_resnet12": (1, 1, 1, 1),
    "hybrid_resnet20": (2, 2, 2, 2),
    "hybrid_resnet34": (3, 4, 6, 3),
}
STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
STEM = ("stem0", "stem1", "stem2")
STEM_CHANNELS = 64
POISSON_GAIN = 0.9  # resnet_spiking.py's PoissonGenerator: 1[u <= 0.9 |x|] * sign(x)


def block_name(stage: int, block: int) -> str:
    return f"stage{stage}_block{block}"


def spiking_layer_names(blocks: Sequence[int]) -> tuple[str, ...]:
    """Convolutions followed by a spiking activation, in the official threshold order:
    ``stem0, stem1, stem2``, then ``<block>_conv1, <block>_conv2`` for every block."""
    names = list(STEM)
    for stage, count in enumerate(blocks):
        for block in range(count):
            names += [f"{block_name(stage, block)}_conv1", f"{block_name(stage, block)}_conv2"]
    return tuple(names)


def rescale_second_convs(params: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    """``params`` with every block's ``conv2`` kernel times its ``conv1`` threshold (a new tree).

    Conversion mode ``residual`` (:mod:`snnjax.methods.hybrid.conversion`): the spikes of ``conv1``
    then carry ``theta_conv1`` each into ``conv2``, which puts ``conv2(s1)`` on the scale of the
    shortcut term it is added to. Blocks whose ``conv1`` is not in ``thresholds`` are unchanged.
    """
    out = dict(params)
    for name, theta in thresholds.items():
        if name.endswith("_conv1"):
            conv2 = name[: -len("_conv1")] + "_conv2"
            out[conv2] = {**params[conv2], "kernel": params[conv2]["kernel"] * theta}
    return out


def _scaled(channels: int, width: int) -> int:
    return max(1, channels * width // 64)


class HybridResNet(nn.Module):
    """ResNet for ANNs and SNNs (see the module docstring).

    Attributes:
      blocks: basic blocks per stage, e.g. ``BLOCKS["hybrid_resnet20"]`` (a tuple: conversion
        caches compiled runs by module).
      num_classes: logits per example.
      activation: module factory (``layers.ReLU`` or ``functools.partial(HybridNeuron, ...)``).
      time_steps: ``T`` (1 for the ANN).
      width: channels of the stem (64 in the paper); every stage scales by ``width / 64``.
      encoding: ``direct`` or ``poisson`` (for a ``[B, H, W, C]`` input).
      poisson_gain: Poisson firing probability per unit ``|x|`` (official ResNet: 0.9).
      dropout: rate after ``stem0``, ``stem1`` and every block's ``conv1`` activation.
      probe: a name of :meth:`spiking_layers`: return that layer's input current as float32
        ``[B, T, ...]`` (for ``<block>_conv2``: ``conv2(spikes1) + shortcut(x)``) instead of the
        logits, skipping what follows (threshold balancing).
      dense_init: init of ``head``: ``reference`` N(0, 0.01) or ``he``.
      dtype: compute dtype; params float32, logits float32.
    """

    blocks: Sequence[int]
    num_classes: int
    activation: layers.ActivationFactory = layers.ReLU
    time_steps: int = 1
    width: int = 64
    encoding: vgg_lib.Encoding = "direct"
    poisson_gain: float = POISSON_GAIN
    dropout: float = 0.2
    probe: str | None = None
    dense_init: Literal["reference", "he"] = "reference"
    dtype: Dtype = jnp.float32

    def spiking_layers(self) -> tuple[str, ...]:
        """Layers with a threshold, in balancing order (see :func:`spiking_layer_names`)."""
        return spiking_layer_names(self.blocks)

    def _conv(self, features: int, kernel: int, stride: int, name: str) -> nn.Conv:
        pad = (kernel - 1) // 2
        return nn.Conv(
            features,
            (kernel, kernel),
            strides=(stride, stride),
            padding=((pad, pad), (pad, pad)),
            use_bias=False,
            dtype=self.dtype,
            kernel_init=vgg_lib.conv_kernel_init,
            name=name,
            conv_general_dilated=conv_lib.conv_auto_grad,
        )

    def _input(self, x: jax.Array) -> tuple[jax.Array, bool]:
        """``[B*T, H, W, C]`` (encoded), or ``([B, H, W, C], True)`` for a direct input the same at every step."""
        steps = self.time_steps
        if x.ndim == 5:
            if x.shape[1] != steps:
                raise ValueError(f"input has {x.shape[1]} time steps but the model has time_steps={steps}")
            return layers.merge_time(x), False
        if x.ndim != 4:
            raise ValueError(f"expected input [B, H, W, C] or [B, T, H, W, C], got shape {x.shape}")
        if self.encoding == "poisson":
            encoded = vgg_lib.poisson_encode(self.make_rng("encoding"), x * self.poisson_gain, steps)
            return layers.merge_time(encoded), False
        return x, True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Logits ``[B, num_classes]`` (sum over time) for ``x`` ``[B, H, W, C]`` or ``[B, T, H, W, C]``."""
        if self.encoding not in vgg_lib.ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; choose one of {list(vgg_lib.ENCODINGS)}")
        if self.dense_init not in vgg_lib.DENSE_INITS:
            raise ValueError(f"unknown dense_init {self.dense_init!r}; choose one of {list(vgg_lib.DENSE_INITS)}")
        if self.probe is not None and self.probe not in self.spiking_layers():
            raise ValueError(
                f"probe={self.probe!r} is not a layer of this ResNet; choose one of {list(self.spiking_layers())}"
            )
        steps = self.time_steps
        h, static = self._input(x.astype(self.dtype))

        def fire(current: jax.Array, name: str) -> jax.Array | None:
            """Spikes of layer ``name`` for its input current, or None when probing it."""
            if self.probe == name:
                return None
            return self.activation(name=name + vgg_lib.ACT_SUFFIX)(current, steps)

        def drop(value: jax.Array, name: str) -> jax.Array:
            return vgg_lib.TimeSharedDropout(self.dropout, name=f"{name}_dropout")(
                value, steps, deterministic=not train
            )

        stem_width = _scaled(STEM_CHANNELS, self.width)
        for i, name in enumerate(STEM):
            current = self._conv(stem_width, 3, 1, name)(h)
            if static:
                # A direct input is the same at every step: its first convolution runs once.
                current = layers.merge_time(
                    jnp.broadcast_to(current[:, None], (current.shape[0], steps) + current.shape[1:])
                )
                static = False
            h = fire(current, name)
            if h is None:
                return layers.split_time(current, steps).astype(jnp.float32)
            if i < len(STEM) - 1:
                h = drop(h, name)
        h = nn.avg_pool(h, (2, 2), (2, 2))

        in_channels = stem_width
        for stage, count in enumerate(self.blocks):
            channels = _scaled(STAGE_CHANNELS[stage], self.width)
            for block in range(count):
                prefix = block_name(stage, block)
                stride = STAGE_STRIDES[stage] if block == 0 else 1
                current = self._conv(channels, 3, stride, f"{prefix}_conv1")(h)
                spikes = fire(current, f"{prefix}_conv1")
                if spikes is None:
                    return layers.split_time(current, steps).astype(jnp.float32)
                spikes = drop(spikes, f"{prefix}_conv1")
                current = self._conv(channels, 3, 1, f"{prefix}_conv2")(spikes)
                if stride != 1 or in_channels != channels:
                    current = current + self._conv(channels, 1, stride, f"{prefix}_shortcut")(h)
                else:
                    current = current + h
                h = fire(current, f"{prefix}_conv2")
                if h is None:
                    return layers.split_time(current, steps).astype(jnp.float32)
                in_channels = channels

        # The output layer integrates without spiking: sum_t W s_t = W sum_t s_t.
        summed = layers.split_time(h, steps).sum(axis=1)
        summed = summed.reshape((summed.shape[0], -1))
        logits = nn.Dense(
            self.num_classes,
            use_bias=False,
            dtype=self.dtype,
            kernel_init=vgg_lib.DENSE_INITS[self.dense_init],
            name="head",
        )(summed)
        return logits.astype(jnp.float32)


# ---------------------------------------------------------------------------------------------
# Building from a config section.
# ---------------------------------------------------------------------------------------------


NAMES = tuple(BLOCKS)  # model names in the registry (snnjax.models.registry)


def resnet_config(**overrides) -> ml_collections.ConfigDict:
    """A hybrid ResNet ``model`` section (the hybrid pipeline's).

    Keys as :func:`snnjax.methods.hybrid.vgg.vgg_config` (``neuron``, ``time_steps``, ``decay``,
    ``v_threshold``, ``surrogate``, ``surrogate_param``, ``stdb_beta``, ``encoding``,
    ``spike_delay``, ``dropout``, ``dense_init``, ``dtype``, ``unroll``), except:

        name            hybrid_resnet6 | hybrid_resnet12 | hybrid_resnet20 | hybrid_resnet34
        width           channels of the stem (64); every stage scales by width / 64
        poisson_gain    Poisson firing probability per unit |x| (official ResNet: 0.9)

    and no ``classifier_dropout`` (the classifier is one linear layer).
    """
    cfg = vgg_lib.vgg_config(name="hybrid_resnet20", poisson_gain=POISSON_GAIN)
    del cfg["classifier_dropout"]
    cfg.update(overrides)
    return cfg


def validate(cfg: ml_collections.ConfigDict, prefix: str = "model") -> None:
    """Check a :func:`resnet_config` section (errors name ``config.<prefix>.<key>``)."""
    missing = [k for k in vgg_lib.COMMON_KEYS + ("poisson_gain",) if k not in cfg]
    if missing:
        raise ValueError(
            f"config.{prefix} lacks the hybrid ResNet keys {missing}: build the section with "
            "snnjax.methods.hybrid.resnet.resnet_config (the BN ResNet keys do not fit it)"
        )
    vgg_lib.check_section(cfg, prefix, NAMES, dropout_keys=("dropout",))
    if not 0.0 < float(cfg.poisson_gain) <= 1.0:
        raise ValueError(f"config.{prefix}.poisson_gain={cfg.poisson_gain!r} must be in (0, 1] (official: 0.9)")


def build(cfg: ml_collections.ConfigDict, num_classes: int, *, prefix: str = "model") -> HybridResNet:
    """The :class:`HybridResNet` of a :func:`resnet_config` section."""
    validate(cfg, prefix)
    return HybridResNet(
        blocks=BLOCKS[cfg.name],
        num_classes=num_classes,
        activation=vgg_lib.activation_factory(cfg),
        time_steps=int(cfg.time_steps),
        width=int(cfg.width),
        encoding=cfg.encoding,
        poisson_gain=float(cfg.poisson_gain),
        dropout=float(cfg.dropout),
        dense_init=cfg.dense_init,
        dtype=jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32,
    )


register("hybrid_resnet", sys.modules[__name__])  # this family in snnjax.models.build (snnjax.methods imports it)
