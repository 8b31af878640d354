"""One VGG definition for the ANN and the converted / STDB-trained SNN (hybrid conversion).

Layout of the hybrid-conversion code (Rathi et al. 2020): bias-free 3x3 convolutions, each followed
by the activation and dropout (0.2) - except a convolution followed by ``"A"`` (2x2 average
pooling), whose dropout is left out; no batch norm. Classifier: ``flatten -> fc0 (hidden) -> act ->
dropout 0.5 -> fc1 (hidden) -> act -> dropout 0.5 -> head``, all bias-free. VGG16 on 32x32 inputs
flattens 512 x 2 x 2 into 4096 hidden units; the flatten size follows the input size.

The activation is a module factory (:mod:`snnjax.layers`): :class:`~snnjax.layers.ReLU` gives the
ANN (``time_steps = 1``), :class:`~snnjax.methods.hybrid.neuron.HybridNeuron` the SNN. Both have the SAME parameter
tree, so ANN -> SNN conversion copies ``params`` as they are; the SNN's per-layer thresholds live in
the separate ``thresholds`` collection (``{"<layer>_act": {"threshold": theta}}``).

SNN specifics (as the reference code):

* input encoding: ``direct`` (the analog image at every step) or ``poisson`` (signed rate coding
  ``1[u <= |x|] * sign(x)``, ``u ~ U[0, 1)`` per pixel and step, from the ``encoding`` rng stream;
  meant for inputs in ``[-1, 1]``);
* the output layer does not spike: logits are ``head(sum_t spikes_t)`` = the sum over the ``T``
  steps of ``W * spikes`` (cross-entropy is taken on this sum, as in the reference; divide by ``T``
  for a rate-scale output);
* dropout masks are drawn once per forward pass (``dropout`` rng stream) and reused at every step.

Parameter paths: ``conv{i}/kernel`` (``i`` counts convolutions from 0), ``fc0/kernel``,
``fc1/kernel``, ``head/kernel``. Inputs ``[B, H, W, C]`` (encoded over ``time_steps``) or already
encoded ``[B, T, H, W, C]``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from snnjax import layers, surrogates
from snnjax.methods.hybrid import neuron as neuron_lib
from snnjax.models import conv as conv_lib
from snnjax.models.registry import register

Dtype = Any
Encoding = Literal["direct", "poisson"]
ENCODINGS = ("direct", "poisson")
NEURONS = ("relu", "if", "lif")
POOL = "A"

# The reference code's layer lists (channels; "A" = 2x2 average pooling).
ARCHS: dict[str, tuple[int | str, ...]] = {
    "vgg5": (64, POOL, 128, 128, POOL),
    "vgg9": (64, POOL, 128, 256, POOL, 256, 512, POOL, 512, POOL, 512),
    "vgg11": (64, POOL, 128, 256, POOL, 512, 512, POOL, 512, POOL, 512, 512),
    "vgg13": (64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, 512, POOL, 512),
    "vgg16": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512),
    "vgg19": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL, 512, 512, 512, 512),
}
HIDDEN = 4096  # classifier width at width = 64
ACT_SUFFIX = "_act"

# Reference init: convs N(0, 2 / (k * k * out)) (fan-out He), linear layers N(0, 0.01). At the
# paper's widths N(0, 0.01) roughly keeps activations' scale (fan-in 2048-8192); in narrow nets
# (width 16: fan-in 128) it shrinks every linear layer's output ~100x and SGD stalls, hence "he".
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
DENSE_INITS = {
    "reference": nn.initializers.normal(0.01),
    "he": nn.initializers.variance_scaling(2.0, "fan_in", "normal"),
}


def poisson_encode(key: jax.Array, x: jax.Array, time_steps: int) -> jax.Array:
    """Signed Poisson rate coding: ``[B, ...] -> [B, T, ...]`` of ``1[u <= |x|] * sign(x)`` in ``x.dtype``.

    ``u ~ U[0, 1)`` independently per element and step, so a pixel fires with rate ``min(|x|, 1)``
    spikes per step, with the sign of ``x``.
    """
    u = jax.random.uniform(key, (x.shape[0], time_steps) + x.shape[1:], jnp.float32)
    x32 = x.astype(jnp.float32)[:, None]
    return ((u <= jnp.abs(x32)) * jnp.sign(x32)).astype(x.dtype)


class TimeSharedDropout(nn.Module):
    """Dropout on a merged ``[B*T, ...]`` tensor with ONE mask per example, shared by all ``T`` steps.

    Kept units are scaled by ``1 / (1 - rate)`` (the reference applies ``nn.Dropout`` to a tensor of
    ones once per forward pass and multiplies every step by it). Uses the ``dropout`` rng stream.
    """

    rate: float

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int, *, deterministic: bool) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        per_step = layers.split_time(x, time_steps)
        mask_shape = (per_step.shape[0], 1) + per_step.shape[2:]
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, mask_shape)
        return layers.merge_time(jnp.where(mask, per_step / keep, 0.0).astype(x.dtype))


def conv_names(arch: Sequence[int | str]) -> tuple[str, ...]:
    """``("conv0", "conv1", ...)``: one name per convolution of ``arch``."""
    return tuple(f"conv{i}" for i in range(sum(1 for item in arch if item != POOL)))


def spiking_layer_names(arch: Sequence[int | str]) -> tuple[str, ...]:
    """Layers whose outputs go through the activation (thresholds in the SNN), in forward order."""
    return conv_names(arch) + ("fc0", "fc1")


def _scaled(channels: int, width: int) -> int:
    return max(1, channels * width // 64)


class VGG(nn.Module):
    """VGG for ANNs and SNNs (see the module docstring).

    Attributes:
      arch: layer tuple, e.g. ``ARCHS["vgg16"]`` (a tuple: conversion caches compiled runs by module).
      num_classes: logits per example.
      activation: module factory (``layers.ReLU`` or ``functools.partial(HybridNeuron, ...)``).
      time_steps: ``T`` (1 for the ANN).
      width: channels of the first convolution (64 in the paper); every layer, the hidden
        classifier width (4096) included, scales by ``width / 64``.
      encoding: ``direct`` or ``poisson`` (for a ``[B, H, W, C]`` input).
      dropout: rate after convolutions (0.2); ``classifier_dropout``: after ``fc0``/``fc1`` (0.5).
      probe: name of a layer in :func:`spiking_layer_names`: return that layer's input current
        ``W * in`` as float32 ``[B, T, ...]`` instead of the logits, skipping the layers after it
        (threshold balancing).
      dense_init: init of the linear layers: ``reference`` N(0, 0.01) or ``he`` (N(0, 2 / fan_in)).
      dtype: compute dtype; params float32, logits float32.
    """

    arch: Sequence[int | str]
    num_classes: int
    activation: layers.ActivationFactory = layers.ReLU
    time_steps: int = 1
    width: int = 64
    encoding: Encoding = "direct"
    dropout: float = 0.2
    classifier_dropout: float = 0.5
    probe: str | None = None
    dense_init: Literal["reference", "he"] = "reference"
    dtype: Dtype = jnp.float32

    def spiking_layers(self) -> tuple[str, ...]:
        """Layers with a threshold, in balancing order (see :func:`spiking_layer_names`)."""
        return spiking_layer_names(self.arch)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Logits ``[B, num_classes]`` (sum over time) for ``x`` ``[B, H, W, C]`` or ``[B, T, H, W, C]``."""
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; choose one of {list(ENCODINGS)}")
        if self.probe is not None and self.probe not in spiking_layer_names(self.arch):
            raise ValueError(
                f"probe={self.probe!r} is not a layer of this VGG; choose one of {list(spiking_layer_names(self.arch))}"
            )
        steps = self.time_steps
        x = x.astype(self.dtype)
        static = False  # True while every time step sees the same tensor (direct encoding)
        if x.ndim == 5:
            if x.shape[1] != steps:
                raise ValueError(f"input has {x.shape[1]} time steps but the model has time_steps={steps}")
            h = layers.merge_time(x)
        elif x.ndim == 4:
            if self.encoding == "poisson":
                h = layers.merge_time(poisson_encode(self.make_rng("encoding"), x, steps))
            else:
                h, static = x, True
        else:
            raise ValueError(f"expected input [B, H, W, C] or [B, T, H, W, C], got shape {x.shape}")

        if self.dense_init not in DENSE_INITS:
            raise ValueError(f"unknown dense_init {self.dense_init!r}; choose one of {list(DENSE_INITS)}")
        dense_kernel_init = DENSE_INITS[self.dense_init]
        names = iter(conv_names(self.arch))
        for i, item in enumerate(self.arch):
            if item == POOL:
                h = nn.avg_pool(h, (2, 2), (2, 2))
                continue
            name = next(names)
            h = nn.Conv(
                _scaled(int(item), self.width),
                (3, 3),
                padding=((1, 1), (1, 1)),
                use_bias=False,
                dtype=self.dtype,
                kernel_init=conv_kernel_init,
                name=name,
                conv_general_dilated=conv_lib.conv_auto_grad,
            )(h)
            if static:
                # The first conv of a direct-encoded input is the same at every step: run it once.
                h = layers.merge_time(jnp.broadcast_to(h[:, None], (h.shape[0], steps) + h.shape[1:]))
                static = False
            if self.probe == name:
                return layers.split_time(h, steps).astype(jnp.float32)
            h = self.activation(name=name + ACT_SUFFIX)(h, steps)
            if i + 1 < len(self.arch) and self.arch[i + 1] == POOL:
                continue  # the reference drops the dropout in front of a pooling layer
            h = TimeSharedDropout(self.dropout, name=f"{name}_dropout")(h, steps, deterministic=not train)

        if static:  # an architecture without convolutions
            h = layers.merge_time(jnp.broadcast_to(h[:, None], (h.shape[0], steps) + h.shape[1:]))
        h = h.reshape((h.shape[0], -1))
        hidden = _scaled(HIDDEN, self.width)
        for name in ("fc0", "fc1"):
            h = nn.Dense(hidden, use_bias=False, dtype=self.dtype, kernel_init=dense_kernel_init, name=name)(h)
            if self.probe == name:
                return layers.split_time(h, steps).astype(jnp.float32)
            h = self.activation(name=name + ACT_SUFFIX)(h, steps)
            h = TimeSharedDropout(self.classifier_dropout, name=f"{name}_dropout")(h, steps, deterministic=not train)
        # The output layer integrates without spiking: sum_t W s_t = W sum_t s_t.
        summed = layers.split_time(h, steps).sum(axis=1)
        logits = nn.Dense(
            self.num_classes, use_bias=False, dtype=self.dtype, kernel_init=dense_kernel_init, name="head"
        )(summed)
        return logits.astype(jnp.float32)


def thresholds_to_collection(thresholds: dict[str, Any]) -> dict[str, Any]:
    """``{layer: theta}`` -> the ``thresholds`` collection ``{layer + "_act": {"threshold": theta}}``."""
    return {name + ACT_SUFFIX: {"threshold": jnp.asarray(value, jnp.float32)} for name, value in thresholds.items()}


def thresholds_from_collection(collection: dict[str, Any]) -> dict[str, float]:
    """Inverse of :func:`thresholds_to_collection` (values as Python floats)."""
    return {name[: -len(ACT_SUFFIX)]: float(entry["threshold"]) for name, entry in collection.items()}


# ---------------------------------------------------------------------------------------------
# Building from a config section.
# ---------------------------------------------------------------------------------------------


NAMES = tuple(ARCHS)  # model names in the registry (snnjax.models.registry): the architecture
SURROGATES = ("stdb", "linear")


def vgg_config(**overrides) -> ml_collections.ConfigDict:
    """A VGG ``model`` config section (the hybrid pipeline's).

    Keys::

        name            vgg5 | vgg9 | vgg11 | vgg13 | vgg16 | vgg19
        width           channels of the first conv (64); everything scales by width / 64
        neuron          relu (ANN) | if | lif
        time_steps      T (1 for the ANN)
        decay           membrane decay of ``lif`` (``if`` uses 1.0)
        v_threshold     initial threshold of every layer (replaced by threshold balancing)
        surrogate       stdb | linear (the surrogate of the SNN; its neuron resets softly, reset detached)
        surrogate_param alpha of the surrogate (0.3)
        stdb_beta       STDB's decay per step since the last spike (0.01)
        encoding        direct | poisson
        spike_delay     True: a layer's spike at step t comes from its membrane after step t-1 (the
                        official code's timing: one step of latency per layer); False: integrate
                        and fire in the same step
        dropout, classifier_dropout   0.2, 0.5 (the hybrid presets: 0.3 for the SNN, as snn.py;
                        the ANN's own rate is config.ann.dropout, 0.2 as ann.py)
        dense_init      reference (N(0, 0.01)) | he (N(0, 2 / fan_in); for narrow nets)
        dtype           float32 | bfloat16
        unroll          lax.scan unroll factor over time (0 = fully unrolled)
    """
    cfg = ml_collections.ConfigDict(
        dict(
            name="vgg16",
            width=64,
            neuron="if",
            time_steps=100,
            decay=1.0,
            v_threshold=1.0,
            surrogate="stdb",
            surrogate_param=0.3,
            stdb_beta=surrogates.STDB_BETA,
            encoding="poisson",
            spike_delay=False,
            dropout=0.2,
            classifier_dropout=0.5,
            dense_init="reference",
            dtype="float32",
            unroll=1,
        )
    )
    cfg.update(overrides)
    return cfg


def _check(cfg: ml_collections.ConfigDict, key: str, allowed: Sequence[Any], prefix: str) -> None:
    if cfg[key] not in allowed:
        raise ValueError(f"config.{prefix}.{key}={cfg[key]!r} is not valid; choose one of {list(allowed)}")


# Keys every hybrid model section (VGG and ResNet) has.
COMMON_KEYS = (
    "name",
    "neuron",
    "encoding",
    "dtype",
    "dense_init",
    "surrogate",
    "width",
    "time_steps",
    "dropout",
    "decay",
    "surrogate_param",
    "stdb_beta",
)


def check_section(
    cfg: ml_collections.ConfigDict, prefix: str, names: Sequence[str], dropout_keys: Sequence[str]
) -> None:
    """The checks shared by the hybrid VGG and ResNet sections (``names``: the family's model names)."""
    _check(cfg, "name", names, prefix)
    _check(cfg, "neuron", NEURONS, prefix)
    _check(cfg, "encoding", ENCODINGS, prefix)
    _check(cfg, "dtype", ("float32", "bfloat16"), prefix)
    _check(cfg, "dense_init", tuple(DENSE_INITS), prefix)
    _check(cfg, "surrogate", SURROGATES, prefix)
    steps, width = int(cfg.time_steps), int(cfg.width)
    if width < 1:
        raise ValueError(f"config.{prefix}.width must be >= 1, got {width}")
    if steps < 1:
        raise ValueError(f"config.{prefix}.time_steps must be >= 1, got {steps}")
    for key in dropout_keys:
        if not 0.0 <= float(cfg[key]) < 1.0:
            raise ValueError(f"config.{prefix}.{key} must be in [0, 1), got {cfg[key]}")
    if not 0.0 <= float(cfg.decay) <= 1.0:
        raise ValueError(f"config.{prefix}.decay={cfg.decay!r} must be in [0, 1] (1.0 = IF)")
    if float(cfg.surrogate_param) <= 0:
        raise ValueError(f"config.{prefix}.surrogate_param={cfg.surrogate_param!r} must be > 0 (paper: 0.3)")
    if float(cfg.stdb_beta) < 0:
        raise ValueError(f"config.{prefix}.stdb_beta={cfg.stdb_beta!r} must be >= 0 (paper: 0.01)")
    if cfg.neuron == "relu" and (steps != 1 or cfg.encoding != "direct"):
        raise ValueError(
            f"an ANN (config.{prefix}.neuron='relu') needs time_steps=1 and encoding='direct', "
            f"got time_steps={steps}, encoding={cfg.encoding!r}"
        )


def validate(cfg: ml_collections.ConfigDict, prefix: str = "model") -> None:
    """Check a :func:`vgg_config` section (errors name ``config.<prefix>.<key>``)."""
    missing = [k for k in COMMON_KEYS + ("classifier_dropout",) if k not in cfg]
    if missing:
        raise ValueError(
            f"config.{prefix} lacks the VGG keys {missing}: build a VGG section with "
            "snnjax.methods.hybrid.vgg.vgg_config (the ResNet keys do not fit a VGG)"
        )
    check_section(cfg, prefix, NAMES, dropout_keys=("dropout", "classifier_dropout"))


def activation_factory(cfg: ml_collections.ConfigDict) -> layers.ActivationFactory:
    """``layers.ReLU`` for ``neuron='relu'``, else the :class:`HybridNeuron` the section describes."""
    if cfg.neuron == "relu":
        return layers.ReLU
    return functools.partial(
        neuron_lib.HybridNeuron,
        decay=1.0 if cfg.neuron == "if" else float(cfg.decay),
        v_threshold=float(cfg.v_threshold),
        surrogate=surrogates.get(cfg.surrogate, float(cfg.surrogate_param), beta=float(cfg.stdb_beta)),
        unroll=True if int(cfg.unroll) == 0 else int(cfg.unroll),
        delay=bool(cfg.get("spike_delay", False)),
    )


def build(cfg: ml_collections.ConfigDict, num_classes: int, *, prefix: str = "model") -> VGG:
    """The :class:`VGG` of a :func:`vgg_config` section (``prefix`` names it in error messages)."""
    validate(cfg, prefix)
    return VGG(
        arch=ARCHS[cfg.name],
        num_classes=num_classes,
        activation=activation_factory(cfg),
        time_steps=int(cfg.time_steps),
        width=int(cfg.width),
        encoding=cfg.encoding,
        dropout=float(cfg.dropout),
        classifier_dropout=float(cfg.classifier_dropout),
        dense_init=cfg.dense_init,
        dtype=jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32,
    )


register("vgg", sys.modules[__name__])  # this family in snnjax.models.build (snnjax.methods imports it)
