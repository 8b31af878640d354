"""One ResNet definition for the ANN teacher and the Spiking ResNet student.

The activation is a module factory (:mod:`snnjax.layers`): :class:`~snnjax.layers.ReLU` gives the
ANN, :class:`~snnjax.layers.SpikingNeuron` the SNN. Both have identical parameter trees, which is
what makes weight transplant, SNN2ANN weight sharing and ANN->SNN conversion tree operations.

Layout (the official IDSNN CIFAR code): 3x3 stem conv (no max-pool), BN, activation; four stages of
blocks with widths ``width * (1, 2, 4, 8)`` and strides 1/2/2/2; activation AFTER the residual add;
1x1 conv + BN shortcut where the shape changes; no conv biases; global average pool, mean over
time, fully connected head. Convolutions use PyTorch's symmetric padding so that weights and
activations line up exactly with torchvision-style models.

Parameter paths (what :mod:`snnjax.methods.idsnn.transplant` relies on)::

    stem_conv/kernel, stem_bn/{scale,bias}
    stage{s}_block{b}/{conv1,conv2,(conv3),shortcut_conv}/kernel
    stage{s}_block{b}/{bn1,bn2,(bn3),shortcut_bn}/{scale,bias}
    head/{kernel,bias}

``s`` and ``b`` count from 0. Spiking inputs are ``[B, T, H, W, C]`` (event frames) or static
``[B, H, W, C]`` images, which are fed at every one of ``time_steps`` steps (direct encoding).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax import layers
from snnjax.models import conv as conv_lib
from snnjax.models import initializers

Dtype = Any
Connect = Literal["standard", "sew_add", "sew_and", "sew_iand"]
ConvGrad = conv_lib.ConvGrad
CONV_GRADS = conv_lib.CONV_GRADS

# torchvision's ResNet init (kaiming normal, fan_out). The official IDSNN code has no init code and
# so uses PyTorch's default: ``init="pytorch"`` (snnjax.models.initializers).
conv_kernel_init = initializers.conv_kernel("kaiming_fan_out")


def _conv(
    features: int,
    kernel: int,
    stride: int,
    dtype: Dtype,
    name: str,
    conv_grad: ConvGrad = "auto",
    weight_init: str = "kaiming_fan_out",
) -> nn.Conv:
    pad = (kernel - 1) // 2
    return nn.Conv(
        features,
        (kernel, kernel),
        (stride, stride),
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        dtype=dtype,
        kernel_init=initializers.conv_kernel(weight_init),
        name=name,
        conv_general_dilated=conv_lib.conv_impl(conv_grad),
    )


def _sew_connect(out: jax.Array, identity: jax.Array, connect: Connect) -> jax.Array:
    """Spike-element-wise residual functions of SEW ResNet (Fang et al. 2021)."""
    if connect == "sew_add":
        return out + identity
    if connect == "sew_and":
        return out * identity
    if connect == "sew_iand":
        return (1.0 - out) * identity  # IAND: (not A) and S
    raise ValueError(f"unknown SEW connect function {connect!r}")


class BasicBlock(nn.Module):
    """Two 3x3 convs. Standard: ``act(BN(conv(act(BN(conv(x))))) + shortcut(x))``.

    SEW (``connect`` = ``sew_*``): ``g(act(BN(conv(act(BN(conv(x)))))), shortcut(x))`` where a
    downsampling shortcut is ``act(BN(conv1x1(x)))`` so that both inputs of ``g`` are spikes.
    """

    features: int
    strides: int
    norm: Any
    activation: layers.ActivationFactory
    connect: Connect = "standard"
    dtype: Dtype = jnp.float32
    conv_grad: ConvGrad = "auto"
    weight_init: str = "kaiming_fan_out"
    expansion = 1

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int) -> jax.Array:
        y = _conv(self.features, 3, self.strides, self.dtype, "conv1", self.conv_grad, self.weight_init)(x)
        y = self.activation(name="act1")(self.norm(name="bn1")(y), time_steps)
        y = _conv(self.features, 3, 1, self.dtype, "conv2", self.conv_grad, self.weight_init)(y)
        y = self.norm(name="bn2")(y)
        return _residual(self, x, y, self.features, time_steps)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 (x4 channels), activation after the residual add."""

    features: int
    strides: int
    norm: Any
    activation: layers.ActivationFactory
    connect: Connect = "standard"
    dtype: Dtype = jnp.float32
    conv_grad: ConvGrad = "auto"
    weight_init: str = "kaiming_fan_out"
    expansion = 4

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int) -> jax.Array:
        y = _conv(self.features, 1, 1, self.dtype, "conv1", self.conv_grad, self.weight_init)(x)
        y = self.activation(name="act1")(self.norm(name="bn1")(y), time_steps)
        y = _conv(self.features, 3, self.strides, self.dtype, "conv2", self.conv_grad, self.weight_init)(y)
        y = self.activation(name="act2")(self.norm(name="bn2")(y), time_steps)
        y = _conv(self.features * 4, 1, 1, self.dtype, "conv3", self.conv_grad, self.weight_init)(y)
        y = self.norm(name="bn3")(y)
        return _residual(self, x, y, self.features * 4, time_steps)


def _residual(block: nn.Module, x: jax.Array, y: jax.Array, out_features: int, time_steps: int) -> jax.Array:
    """Shortcut + merge; called inside a block's compact ``__call__`` (submodules bind to it)."""
    identity = x
    if x.shape != y.shape:
        identity = _conv(
            out_features, 1, block.strides, block.dtype, "shortcut_conv", block.conv_grad, block.weight_init
        )(x)
        identity = block.norm(name="shortcut_bn")(identity)
        if block.connect != "standard":
            identity = block.activation(name="shortcut_act")(identity, time_steps)
    if block.connect == "standard":
        return block.activation(name="act_out")(y + identity, time_steps)
    return _sew_connect(block.activation(name="act_out")(y, time_steps), identity, block.connect)


class ResNet(nn.Module):
    """CIFAR/ImageNet ResNet whose activation makes it an ANN or an SNN.

    Attributes:
      stage_sizes: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet18.
      block_cls: :class:`BasicBlock` or :class:`Bottleneck`.
      num_classes: logits per example.
      activation: module factory, see :mod:`snnjax.layers`.
      time_steps: ``T``; static inputs are repeated ``T`` times (1 for the ANN).
      width: channels of the stem and first stage (64 in the paper; smaller for quick runs).
      stem: ``"cifar"`` (3x3 stride 1, no pool), ``"imagenet"`` (7x7 stride 2 + 3x3 max-pool, first
        stage stride 1: torchvision) or ``"imagenet_nopool"`` (7x7 stride 2, no max-pool, first stage
        stride 2: the pretraining paper's official ImageNet ResNets, whose max-pool is defined but
        never called; same output size as ``imagenet``).
      stem_padding: padding of the CIFAR stem conv. 1 keeps 32x32 maps; the official IDSNN SNN
        uses 3 (36x36 maps) - offered for exact comparison only.
      connect: ``"standard"`` residual add, or a SEW function (``sew_add``, ``sew_and``, ``sew_iand``).
      bn_scale_init: BN gamma at initialisation (1.0 for ANNs, ``v_threshold`` = 0.5 for SNNs).
      bn_momentum: Flax momentum (= 1 - PyTorch momentum: 0.9 for PyTorch's 0.1).
      dtype: compute dtype (``jnp.bfloat16`` for mixed precision); params stay float32 and the
        logits are returned in float32.
      remat: recompute each residual block's activations in the backward pass
        (``jax.checkpoint`` per block) instead of storing them: less memory, more compute.
      conv_grad: how convolutions compute their kernel gradient (:mod:`snnjax.models.conv`):
        ``"auto"`` (batch-split on CPU, XLA's elsewhere), ``"xla"``, ``"split"`` or ``"matmul"``.
        The forward pass and input gradients are XLA's in every case.
      weight_init: weight initialisation scheme, ``"kaiming_fan_out"`` or ``"pytorch"``
        (:mod:`snnjax.models.initializers`).
    """

    stage_sizes: Sequence[int]
    block_cls: type
    num_classes: int
    activation: layers.ActivationFactory = layers.ReLU
    time_steps: int = 1
    width: int = 64
    stem: Literal["cifar", "imagenet", "imagenet_nopool"] = "cifar"
    stem_padding: int = 1
    connect: Connect = "standard"
    bn_scale_init: float = 1.0
    bn_momentum: float = 0.9
    dtype: Dtype = jnp.float32
    remat: bool = False
    conv_grad: ConvGrad = "auto"
    weight_init: str = "kaiming_fan_out"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, per_step: bool = False) -> jax.Array:
        """Logits ``[B, num_classes]`` (float32) for ``x`` ``[B, H, W, C]`` or ``[B, T, H, W, C]``.

        ``per_step=True`` gives the logits of every time step, ``[B, T, num_classes]`` (the head applied
        to each step's pooled features, for per-step losses such as TET). The head is linear, so their
        mean over ``T`` is the default output (equal to float rounding); the default path is unchanged.
        """
        norm = functools.partial(
            nn.BatchNorm,
            use_running_average=not train,
            momentum=self.bn_momentum,
            epsilon=1e-5,
            dtype=self.dtype,
            scale_init=nn.initializers.constant(self.bn_scale_init),
        )
        x = x.astype(self.dtype)
        steps = self.time_steps
        if x.ndim == 5:
            if x.shape[1] != steps:
                raise ValueError(f"input has {x.shape[1]} time steps but the model has time_steps={steps}")
            x = self._stem(layers.merge_time(x), norm)
        elif x.ndim == 4:
            # Direct encoding: every step sees the same image, so the stem conv + BN (whose batch
            # statistics are unchanged by exact repeats) run once and are broadcast over time.
            x = self._stem(x, norm)
            x = layers.merge_time(jnp.broadcast_to(x[:, None], (x.shape[0], steps) + x.shape[1:]))
        else:
            raise ValueError(f"expected input [B, H, W, C] or [B, T, H, W, C], got shape {x.shape}")
        x = self.activation(name="stem_act")(x, steps)
        if self.stem == "imagenet":
            x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        # ``time_steps`` is a Python int that shapes the graph: static under remat (self = arg 0).
        block_cls = nn.remat(self.block_cls, static_argnums=(2,)) if self.remat else self.block_cls
        for s, num_blocks in enumerate(self.stage_sizes):
            for b in range(num_blocks):
                x = block_cls(
                    features=self.width * 2**s,
                    strides=2 if b == 0 and (s > 0 or self.stem == "imagenet_nopool") else 1,
                    norm=norm,
                    activation=self.activation,
                    connect=self.connect,
                    dtype=self.dtype,
                    conv_grad=self.conv_grad,
                    weight_init=self.weight_init,
                    name=f"stage{s}_block{b}",
                )(x, steps)
        x = jnp.mean(x, axis=(1, 2))  # global average pool: [B*T, C]
        x = layers.split_time(x, steps)  # [B, T, C]
        if not per_step:
            x = x.mean(axis=1)  # mean over time: [B, C]
        logits = nn.Dense(
            self.num_classes,
            dtype=self.dtype,
            kernel_init=initializers.dense_kernel(self.weight_init),
            bias_init=initializers.bias(self.weight_init, x.shape[-1]),
            name="head",
        )(x)
        return logits.astype(jnp.float32)

    def _stem(self, x: jax.Array, norm: Any) -> jax.Array:
        if self.stem == "cifar":
            p = self.stem_padding
            conv = nn.Conv(
                self.width,
                (3, 3),
                (1, 1),
                padding=((p, p), (p, p)),
                use_bias=False,
                dtype=self.dtype,
                kernel_init=initializers.conv_kernel(self.weight_init),
                name="stem_conv",
                conv_general_dilated=conv_lib.conv_impl(self.conv_grad),
            )
        else:
            conv = nn.Conv(
                self.width,
                (7, 7),
                (2, 2),
                padding=((3, 3), (3, 3)),
                use_bias=False,
                dtype=self.dtype,
                kernel_init=initializers.conv_kernel(self.weight_init),
                name="stem_conv",
            )
        return norm(name="stem_bn")(conv(x))


STAGE_SIZES = {
    18: ((2, 2, 2, 2), BasicBlock),
    34: ((3, 4, 6, 3), BasicBlock),
    50: ((3, 4, 6, 3), Bottleneck),
    101: ((3, 4, 23, 3), Bottleneck),
}


def resnet(depth: int, num_classes: int, **kwargs) -> ResNet:
    """``ResNet`` of a standard depth (18, 34, 50, 101); ``kwargs`` go to :class:`ResNet`."""
    if depth not in STAGE_SIZES:
        raise ValueError(f"unknown ResNet depth {depth}; choose one of {sorted(STAGE_SIZES)}")
    stage_sizes, block_cls = STAGE_SIZES[depth]
    return ResNet(stage_sizes=stage_sizes, block_cls=block_cls, num_classes=num_classes, **kwargs)
