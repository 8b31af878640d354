"""SNN2ANN networks: a plain conv net (VGG-style) and ResNet-17, each one parameter tree read by
an SNN branch and an ANN branch (:mod:`snnjax.methods.snn2ann.layers`); plus the same plain conv net as a
directly trained surrogate-gradient SNN (the BPTT baseline).

``model.apply(variables, x, train=False)`` returns the SNN branch's logits (what evaluation and
checkpoint selection use); ``train=True`` returns the ANN branch's logits (what the loss is taken
on). :meth:`SNN2ANNVGG.branches` returns both, see :class:`BranchOutputs`.

Variables: ``params`` (per layer ``conv_kernel``, ``conv_bias``, ``bn_scale``, ``bn_bias``; ``head``),
``batch_stats`` (``bn_mean``, ``bn_var``) and ``thresholds`` (``vth`` ``[H, W, C]`` per spiking
layer). Parameter paths: VGG ``layer{i}``, ``layer{i}_neuron``, ``head``; ResNet-17 ``stem``,
``stem_neuron``, ``stage{s}_block{b}/{conv_bn1,neuron1,conv_bn2,shortcut,neuron_out}``, ``head``.

Input: static images ``[B, H, W, C]`` fed at every one of ``T`` steps (direct encoding).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from snnjax import layers as snn_layers
from snnjax import models as snn_models
from snnjax import surrogates
from snnjax.methods.snn2ann import ata as ata_lib
from snnjax.methods.snn2ann import mapping as mapping_lib
from snnjax.methods.snn2ann.layers import MappedIFNeuron, SharedConvBN, pool2x2, pool_over_time
from snnjax.models import initializers
from snnjax.models.conv import conv_auto_grad
from snnjax.models.registry import register

LayerSpec = tuple[int, str | None]  # (output channels, pooling after the conv: None | "max" | "avg")
POOL_TOKENS = {"M": "max", "A": "avg"}

# The official VGG-13 (channels x width/64) and its dropout (first four convs 0.25, none after).
VGG13_LAYERS = "1,1,2,2,4,4,4,M,8,8,8,M,8,8,8,M"
VGG13_DROPOUT = (0.25, 0.25, 0.25, 0.25, 0.0)
# ResNet-17: stem + 4 stages of 2 BasicBlocks; channels x width/64 and strides of the official code.
RESNET17_WIDTHS = (1, 1, 2, 4, 8)
RESNET17_STRIDES = (1, 1, 1, 2, 2)
RESNET17_DROPOUT = (0.2,)
RESIDUALS = ("current", "spikes")
# Official normalisation of run.py (CIFAR-10/100): not the usual CIFAR std.
OFFICIAL_MEAN = (0.4914, 0.4822, 0.4465)
OFFICIAL_STD = (0.557, 0.549, 0.5534)


class BranchOutputs(NamedTuple):
    """Logits of both branches, float32 ``[B, num_classes]``; ``ann_logits`` is None when not run."""

    ann_logits: jax.Array | None
    snn_logits: jax.Array


def parse_layers(spec: str, width: int) -> tuple[LayerSpec, ...]:
    """``"1,1,M,2"`` -> ``((w, None), (w, "max"), (2w, None))``: channel multipliers of ``width``;
    ``M`` / ``A`` put a 2x2 max / average pool after the preceding conv."""
    out: list[LayerSpec] = []
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        if token.upper() in POOL_TOKENS:
            if not out or out[-1][1] is not None:
                raise ValueError(
                    f"config.model.layers={spec!r}: a pool ({token}) must follow a conv layer (one pool per conv)"
                )
            out[-1] = (out[-1][0], POOL_TOKENS[token.upper()])
            continue
        try:
            mult = float(token)
        except ValueError:
            raise ValueError(
                f"config.model.layers={spec!r}: {token!r} is neither a channel multiplier nor "
                "M/A (pool); example: '1,1,M,2,2,M'"
            ) from None
        if mult <= 0 or int(mult * width) < 1:
            raise ValueError(f"config.model.layers={spec!r}: multiplier {token} x width {width} gives no channels")
        out.append((int(mult * width), None))
    if not out:
        raise ValueError(f"config.model.layers={spec!r} has no conv layer; example: '1,1,M,2,2,M'")
    return tuple(out)


def dropout_rate(rates: Sequence[float], position: int) -> float:
    """Rate of dropout position ``position``; positions past the tuple repeat its last value."""
    return float(rates[min(position, len(rates) - 1)]) if rates else 0.0


def _check_static_input(x: jax.Array) -> None:
    if x.ndim != 4:
        raise ValueError(f"SNN2ANN networks take static images [B, H, W, C] (direct encoding), got shape {x.shape}")


def _flatten(x: jax.Array) -> jax.Array:
    return x.reshape((x.shape[0], -1))


def _heads(
    num_classes: int,
    spikes: jax.Array,
    ann_out: jax.Array | None,
    time_steps: int,
    weight_init: str = "kaiming_fan_out",
) -> BranchOutputs:
    """One classifier read by both branches: on the SNN's firing rates and on ``ANN counts / T``.

    ``Dense(count / T)`` equals the mean over ``T`` of the per-step logits (the layer is affine).
    Must be called from a compact method (the ``head`` submodule binds to the caller).
    """
    fan_in = int(np.prod(spikes.shape[2:]))
    head = nn.Dense(
        num_classes,
        kernel_init=initializers.dense_kernel(weight_init),
        bias_init=initializers.bias(weight_init, fan_in),
        name="head",
    )
    snn_logits = jax.lax.stop_gradient(head(_flatten(jnp.mean(spikes, axis=1))))
    ann_logits = None if ann_out is None else head(_flatten(ann_out) / time_steps)
    return BranchOutputs(ann_logits, snn_logits)


class _TwoBranchNet(nn.Module):
    """``__call__``: SNN logits in evaluation, ANN logits in training (see the module docstring)."""

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        out = self.branches(x, train=train, ann=train)
        return out.ann_logits if train else out.snn_logits


class SNN2ANNVGG(_TwoBranchNet):
    """Plain conv net (VGG-style): per layer conv3x3 + BN [+ 2x2 pool] + IF / mapping unit; flatten; FC.

    Attributes:
      layers: ``(channels, pool)`` per conv layer (see :func:`parse_layers`).
      num_classes: logits per example.
      time_steps: ``T`` (4 for the paper's VGG-13).
      mapping_unit: ``"stsu"`` or ``"resu"``.
      dropout: ANN-branch dropout rate per conv layer (the last value repeats).
      use_bias: conv biases (official: yes).
      bn_momentum: Flax BN momentum (0.9 = PyTorch 0.1).
      adapt_threshold: ATA on/off.
      ata: ATA constants.
      membrane_dropout: SNN-branch membrane dropout in training (official 0.5; 0 = off).
      weight_init: ``kaiming_fan_out`` | ``pytorch`` (official: PyTorch's default, conv bias included).
    """

    layers: tuple[LayerSpec, ...]
    num_classes: int
    time_steps: int = 4
    mapping_unit: str = "resu"
    dropout: tuple[float, ...] = (0.0,)
    use_bias: bool = True
    bn_momentum: float = 0.9
    adapt_threshold: bool = True
    ata: ata_lib.AtaConfig = ata_lib.AtaConfig()
    membrane_dropout: float = 0.0
    weight_init: str = "kaiming_fan_out"

    @nn.compact
    def branches(self, x: jax.Array, *, train: bool, ann: bool = True) -> BranchOutputs:
        """Both branches on images ``x`` ``[B, H, W, C]``; ``ann=False`` runs the SNN only.

        In training (``train=True``, collections mutable) the ANN's BN updates ``batch_stats`` and
        ATA updates ``thresholds``; the SNN branch reads the values from before this call.
        """
        _check_static_input(x)
        steps = self.time_steps
        snn, ann_x = x, (x if ann else None)
        for i, (features, pool) in enumerate(self.layers):
            current, preact = SharedConvBN(
                features,
                use_bias=self.use_bias,
                momentum=self.bn_momentum,
                weight_init=self.weight_init,
                name=f"layer{i}",
            )(snn, ann_x, time_steps=steps, train=train)
            if pool is not None:
                current = pool_over_time(current, pool)
                preact = None if preact is None else pool2x2(preact, pool)
            if preact is not None:
                preact = nn.Dropout(dropout_rate(self.dropout, i), deterministic=not train)(preact)
            snn, ann_x = MappedIFNeuron(
                self.mapping_unit, self.adapt_threshold, self.ata, self.membrane_dropout, name=f"layer{i}_neuron"
            )(current, preact, train=train)
        return _heads(self.num_classes, snn, ann_x, steps, self.weight_init)


class MappedBasicBlock(nn.Module):
    """ResNet BasicBlock over both branches: ``fire(BN(conv(fire(BN(conv(x))))) + shortcut(x))``.

    A projection shortcut (stride or width change) adds the folded 1x1 conv + BN current of the
    block's input spikes. An identity shortcut adds, in the SNN, either (``residual="spikes"``)
    the block's input spikes of the same step, or (``residual="current"``, the official code) the
    input CURRENT of the previous block's output neurons (for the first block, the stem neurons'
    current), so currents accumulate along a run of identity blocks. The ANN adds the block's
    input activations (spike counts) in both cases.
    """

    features: int
    strides: int
    time_steps: int
    mapping_unit: str = "resu"
    dropout: float = 0.0
    use_bias: bool = True
    bn_momentum: float = 0.9
    adapt_threshold: bool = True
    ata: ata_lib.AtaConfig = ata_lib.AtaConfig()
    membrane_dropout: float = 0.0
    weight_init: str = "kaiming_fan_out"
    residual: str = "spikes"

    @nn.compact
    def __call__(
        self, snn_in: jax.Array, ann_in: jax.Array | None, *, train: bool, current_in: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array | None, jax.Array]:
        """``(spikes [B, T, H, W, C], ANN input or None; current_in)`` -> ``(spikes, ANN output or None,
        input current of this block's output neurons)`` with this block's output shape.

        ``current_in``: the previous output neurons' input current (needed by ``residual="current"``).
        """
        if self.residual not in RESIDUALS:
            raise ValueError(f"residual={self.residual!r} is not valid; choose one of {list(RESIDUALS)}")
        conv_bn = functools.partial(
            SharedConvBN, use_bias=self.use_bias, momentum=self.bn_momentum, weight_init=self.weight_init
        )
        neuron = functools.partial(
            MappedIFNeuron, self.mapping_unit, self.adapt_threshold, self.ata, self.membrane_dropout
        )
        steps = self.time_steps
        current, preact = conv_bn(self.features, 3, self.strides, name="conv_bn1")(
            snn_in, ann_in, time_steps=steps, train=train
        )
        if preact is not None:
            preact = nn.Dropout(self.dropout, deterministic=not train)(preact)
        spikes, ann_out = neuron(name="neuron1")(current, preact, train=train)
        current, preact = conv_bn(self.features, 3, 1, name="conv_bn2")(spikes, ann_out, time_steps=steps, train=train)
        if self.strides != 1 or snn_in.shape[-1] != self.features:
            sc_current, sc_preact = conv_bn(self.features, 1, self.strides, name="shortcut")(
                snn_in, ann_in, time_steps=steps, train=train
            )
        elif self.residual == "current":
            if current_in is None:
                raise ValueError("residual='current' needs the previous neurons' input current (current_in)")
            sc_current, sc_preact = jax.lax.stop_gradient(current_in), ann_in
        else:
            sc_current, sc_preact = jax.lax.stop_gradient(snn_in), ann_in
        current = current + sc_current
        preact = None if preact is None else preact + sc_preact
        spikes, ann_out = neuron(name="neuron_out")(current, preact, train=train)
        return spikes, ann_out, current


class SNN2ANNResNet(_TwoBranchNet):
    """ResNet-17 of the official code: conv3x3 stem + 4 stages x 2 BasicBlocks (16 convs + stem),
    channels ``width * (1, 1, 2, 4, 8)``, strides ``(1, 1, 1, 2, 2)``, flatten, FC.

    Attributes as :class:`SNN2ANNVGG`, plus ``width`` (64 in the paper), ``stage_widths``,
    ``strides`` (stem first) and ``blocks_per_stage`` (2). ``dropout``: rates of the dropout
    positions (stem, then each block's first conv; the last value repeats; official 0.2).
    ``residual``: what an identity shortcut adds in the SNN (see :class:`MappedBasicBlock`).
    """

    num_classes: int
    time_steps: int = 5
    width: int = 64
    stage_widths: tuple[int, ...] = RESNET17_WIDTHS
    strides: tuple[int, ...] = RESNET17_STRIDES
    blocks_per_stage: int = 2
    mapping_unit: str = "resu"
    dropout: tuple[float, ...] = RESNET17_DROPOUT
    use_bias: bool = True
    bn_momentum: float = 0.9
    adapt_threshold: bool = True
    ata: ata_lib.AtaConfig = ata_lib.AtaConfig()
    membrane_dropout: float = 0.0
    weight_init: str = "kaiming_fan_out"
    residual: str = "spikes"

    @nn.compact
    def branches(self, x: jax.Array, *, train: bool, ann: bool = True) -> BranchOutputs:
        """As :meth:`SNN2ANNVGG.branches`."""
        _check_static_input(x)
        if len(self.stage_widths) != len(self.strides):
            raise ValueError(
                f"stage_widths {self.stage_widths} and strides {self.strides} need one entry each "
                "for the stem and every stage"
            )
        steps = self.time_steps
        current, preact = SharedConvBN(
            self.width * self.stage_widths[0],
            3,
            self.strides[0],
            self.use_bias,
            self.bn_momentum,
            weight_init=self.weight_init,
            name="stem",
        )(x, x if ann else None, time_steps=steps, train=train)
        if preact is not None:
            preact = nn.Dropout(dropout_rate(self.dropout, 0), deterministic=not train)(preact)
        snn, ann_x = MappedIFNeuron(
            self.mapping_unit, self.adapt_threshold, self.ata, self.membrane_dropout, name="stem_neuron"
        )(current, preact, train=train)
        position = 1
        for s, (mult, stride) in enumerate(zip(self.stage_widths[1:], self.strides[1:])):
            for b in range(self.blocks_per_stage):
                snn, ann_x, current = MappedBasicBlock(
                    self.width * mult,
                    stride if b == 0 else 1,
                    steps,
                    self.mapping_unit,
                    dropout_rate(self.dropout, position),
                    self.use_bias,
                    self.bn_momentum,
                    self.adapt_threshold,
                    self.ata,
                    self.membrane_dropout,
                    self.weight_init,
                    self.residual,
                    name=f"stage{s}_block{b}",
                )(snn, ann_x, train=train, current_in=current)
                position += 1
        return _heads(self.num_classes, snn, ann_x, steps, self.weight_init)


class BPTTVGG(nn.Module):
    """The same plain conv net as a directly trained SNN (surrogate gradients through time).

    Per layer: conv3x3 (+bias) -> BN (statistics over ``B x T x H x W``) -> [pool] -> dropout ->
    spiking neuron (``activation``, e.g. IF with hard reset and a rectangular surrogate); head on
    the flattened firing rates. Same parameter count as :class:`SNN2ANNVGG` (no thresholds).
    Train it with :func:`snnjax.train.steps.make_train_step`.
    """

    layers: tuple[LayerSpec, ...]
    num_classes: int
    activation: snn_layers.ActivationFactory
    time_steps: int = 4
    dropout: tuple[float, ...] = (0.0,)
    use_bias: bool = True
    bn_momentum: float = 0.9
    bn_scale_init: float = 1.0
    weight_init: str = "kaiming_fan_out"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Logits ``[B, num_classes]`` for static images ``x`` ``[B, H, W, C]``."""
        _check_static_input(x)
        steps = self.time_steps
        norm = functools.partial(
            nn.BatchNorm,
            use_running_average=not train,
            momentum=self.bn_momentum,
            epsilon=1e-5,
            scale_init=nn.initializers.constant(self.bn_scale_init),
        )
        h = x
        for i, (features, pool) in enumerate(self.layers):
            conv = nn.Conv(
                features,
                (3, 3),
                padding=((1, 1), (1, 1)),
                use_bias=self.use_bias,
                kernel_init=initializers.conv_kernel(self.weight_init),
                bias_init=initializers.bias(self.weight_init, 9 * h.shape[-1]),
                name=f"layer{i}_conv",
                conv_general_dilated=conv_auto_grad,
            )
            y = norm(name=f"layer{i}_bn")(conv(h))
            if i == 0:  # direct encoding: conv + BN of the repeated image computed once
                y = snn_layers.merge_time(jnp.broadcast_to(y[:, None], (y.shape[0], steps) + y.shape[1:]))
            if pool is not None:
                y = pool2x2(y, pool)
            y = nn.Dropout(dropout_rate(self.dropout, i), deterministic=not train)(y)
            h = self.activation(name=f"layer{i}_neuron")(y, steps)
        rates = _flatten(snn_layers.split_time(h, steps).mean(axis=1))
        head = nn.Dense(
            self.num_classes,
            kernel_init=initializers.dense_kernel(self.weight_init),
            bias_init=initializers.bias(self.weight_init, rates.shape[-1]),
            name="head",
        )
        return head(rates).astype(jnp.float32)


ARMS = ("snn2ann", "bptt")
# Model names in the registry (snnjax.models.registry): "<arm>_<arch>".
NAMES = ("snn2ann_vgg", "snn2ann_resnet17", "bptt_vgg")


def split_name(name: str) -> tuple[str, str]:
    """``"snn2ann_resnet17" -> ("snn2ann", "resnet17")``: the training arm and the architecture."""
    arm, _, arch = name.partition("_")
    return arm, arch


def model_config(**overrides) -> ml_collections.ConfigDict:
    """Default ``config.model`` of an SNN2ANN run (the paper's VGG-13, T = 4, ReSU).

    ``name``: ``snn2ann_vgg`` | ``snn2ann_resnet17`` (two-branch nets) | ``bptt_vgg`` (the same plain
    conv net trained directly, the benchmark baseline; only it reads ``neuron`` .. ``unroll``).
    """
    cfg = ml_collections.ConfigDict(
        dict(
            name="snn2ann_vgg",
            layers=VGG13_LAYERS,  # vgg: channel multipliers of `width`, M/A = 2x2 max/avg pool
            width=64,
            time_steps=4,
            mapping_unit="resu",  # resu | stsu
            dropout=VGG13_DROPOUT,  # ANN-branch dropout per position (conv layer); last value repeats
            use_bias=True,
            adapt_threshold=True,  # ATA
            ata_tolerance=0.1,
            ata_step=0.1,
            ata_momentum=0.9,
            membrane_dropout=0.5,  # official IF module: dropout p=0.5 on the kept membrane, every step, training only
            residual="current",  # snn2ann_resnet17 identity shortcut in the SNN: current (official) | spikes
            init="pytorch",  # pytorch (official, kaiming_norm off: conv bias too) | kaiming_fan_out
            # The neuron of the directly trained SNN (bptt_vgg):
            neuron="if",
            decay=1.0,
            v_threshold=0.5,
            reset="hard",
            detach_reset=True,
            surrogate="rectangular",
            surrogate_param=1.0,
            unroll=1,
        )
    )
    cfg.update(overrides)
    return cfg


def validate(cfg: ml_collections.ConfigDict, prefix: str = "model") -> None:
    """Check an SNN2ANN ``model`` section (errors name ``config.<prefix>.<key>``)."""
    if cfg.name not in NAMES:
        raise ValueError(f"config.{prefix}.name={cfg.name!r} is not valid; choose one of {list(NAMES)}")
    mapping_lib.get(cfg.mapping_unit)  # fails early with the valid names
    if int(cfg.time_steps) < 1:
        raise ValueError(f"config.{prefix}.time_steps must be >= 1, got {cfg.time_steps}")
    if int(cfg.width) < 1:
        raise ValueError(f"config.{prefix}.width must be >= 1, got {cfg.width}")
    if any(not 0.0 <= float(r) < 1.0 for r in cfg.dropout):
        raise ValueError(f"config.{prefix}.dropout={cfg.dropout} must hold rates in [0, 1)")
    ata_lib.AtaConfig(float(cfg.ata_tolerance), float(cfg.ata_step), float(cfg.ata_momentum))
    if cfg.get("init", "kaiming_fan_out") not in initializers.INITS:
        raise ValueError(f"config.{prefix}.init={cfg.init!r} is not valid; choose one of {list(initializers.INITS)}")
    if not 0.0 <= float(cfg.get("membrane_dropout", 0.0)) < 1.0:
        raise ValueError(f"config.{prefix}.membrane_dropout={cfg.membrane_dropout} must be in [0, 1) (official 0.5)")
    if cfg.get("residual", "spikes") not in RESIDUALS:
        raise ValueError(f"config.{prefix}.residual={cfg.residual!r} is not valid; choose one of {list(RESIDUALS)}")
    if split_name(cfg.name)[0] == "bptt":
        if cfg.neuron not in ("if", "lif", "plif"):
            raise ValueError(
                f"config.{prefix}.neuron={cfg.neuron!r}: the BPTT baseline is a spiking net; use if, lif or plif"
            )
        if cfg.surrogate not in surrogates.NAMES:
            raise ValueError(
                f"config.{prefix}.surrogate={cfg.surrogate!r} is not valid; choose one of {sorted(surrogates.NAMES)}"
            )


def build(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    """The network of ``config.model``: an SNN2ANN two-branch net, or (``bptt_vgg``) the BPTT baseline."""
    validate(cfg)
    arm, arch = split_name(cfg.name)
    steps, width = int(cfg.time_steps), int(cfg.width)
    dropout = tuple(float(r) for r in cfg.dropout)
    ata = ata_lib.AtaConfig(float(cfg.ata_tolerance), float(cfg.ata_step), float(cfg.ata_momentum))
    init = cfg.get("init", "kaiming_fan_out")
    membrane_dropout = float(cfg.get("membrane_dropout", 0.0))
    residual = cfg.get("residual", "spikes")
    common = dict(
        num_classes=num_classes, time_steps=steps, dropout=dropout, use_bias=bool(cfg.use_bias), weight_init=init
    )
    if arm == "bptt":
        return BPTTVGG(
            parse_layers(cfg.layers, width),
            activation=snn_models.make_activation(cfg),
            bn_scale_init=float(cfg.v_threshold),
            **common,
        )
    branch = dict(
        mapping_unit=cfg.mapping_unit,
        adapt_threshold=bool(cfg.adapt_threshold),
        ata=ata,
        membrane_dropout=membrane_dropout,
    )
    if arch == "vgg":
        return SNN2ANNVGG(parse_layers(cfg.layers, width), **common, **branch)
    return SNN2ANNResNet(width=width, residual=residual, **common, **branch)


register("snn2ann", sys.modules[__name__])  # this family in snnjax.models.build (snnjax.methods imports it)
