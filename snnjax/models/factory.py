"""Build a model from the ``config.model`` section of a run config.

Keys (all validated, with the allowed values in the error message)::

    name            resnet18 | resnet34 | resnet50 | resnet101 (prefix ``sew_`` for SEW blocks)
    width           channels of the first stage (64 in the papers)
    neuron          relu (ANN) | lif | if | plif | psn (parallel spiking neuron, Fang et al. 2023)
    time_steps      T (1 for ANNs)
    decay           LIF decay per step (0.25)
    v_threshold     firing threshold (0.5), also the BN gamma init of an SNN (tdBN); a PSN's thresholds
                    are its learned bias, initialised to -v_threshold (psn_init=lif) or -1 (spikingjelly,
                    whose BN gamma init is then 1)
    reset           hard | soft
    detach_reset    no gradient through the reset
    surrogate       rectangular | sigmoid | atan | triangle
    surrogate_param shape parameter of the surrogate (width or alpha)
    psn_variant     PSN only: full (a T x T time weight) | masked (its lower band of width psn_order) |
                    sliding (psn_order taps shared over time; the only one that runs at another T)
    psn_order       PSN only: k of the masked and sliding variants (>= 1)
    psn_lambda      PSN only: the masked variant's lambda in [0, 1], fixed (1 = fully masked)
    psn_lambda_epochs  masked PSN only: > 0 ramps lambda as the PSN paper trains it, min(1, e / this) at
                    the 1-based epoch e (snnjax.epoch_clock); 0 (default) keeps psn_lambda fixed
    psn_init        PSN only: lif (starts as this config's LIF neuron without reset: decay, v_threshold;
                    the default, the one that trains a Spiking ResNet18) | spikingjelly (random W, b = -1)
    stem_padding    1 (default) or 3 (official IDSNN SNN quirk)
    dtype           float32 | bfloat16 (compute dtype; params stay float32)
    unroll          lax.scan unroll factor over time (0 = fully unrolled, the default: faster and
                    -45% activation memory at T=4; set 1 for long T, whose compile time grows with T)
    lif_impl        scan | fused (one custom VJP over the time loop: same spikes, less memory)
    remat           recompute each residual block in the backward pass (jax.checkpoint): less memory
    init            kaiming_fan_out (torchvision) | pytorch (PyTorch's default init, which the official
                    IDSNN code uses); see snnjax.models.initializers
    conv_grad       auto | xla | split | matmul (how conv kernel gradients are computed; auto = split
                    on CPU with jax's default YNNPACK convolutions, else xla; see snnjax.models.conv)

The last four are speed/memory switches only: spikes are identical and gradients equal to float
rounding whatever they are set to (tests/test_fast_paths.py); benchmarks/RESULTS.md has timings.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from snnjax import layers, neurons, surrogates
from snnjax.models import initializers
from snnjax.models import resnet as resnet_lib

NEURONS = ("relu", "lif", "if", "plif", "psn")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
MODEL_NAMES = tuple(f"{prefix}resnet{d}" for prefix in ("", "sew_") for d in sorted(resnet_lib.STAGE_SIZES))
NAMES = MODEL_NAMES  # this family's names in the model registry (snnjax.models.registry)
# This family's models give per-time-step logits with ``apply(..., per_step=True)`` (what the TET loss
# trains on; snnjax.config refuses ``train.loss="tet"`` for a family without this flag).
PER_STEP_LOGITS = True


def model_config(**overrides) -> ml_collections.ConfigDict:
    """Default ``config.model`` section (IDSNN Spiking ResNet18), with ``overrides`` applied."""
    cfg = ml_collections.ConfigDict(
        dict(
            name="resnet18",
            width=64,
            neuron="lif",
            time_steps=4,
            decay=0.25,
            v_threshold=0.5,
            reset="hard",
            detach_reset=True,
            surrogate="rectangular",
            surrogate_param=1.0,
            psn_variant="full",
            psn_order=2,
            psn_lambda=1.0,
            psn_lambda_epochs=0.0,
            psn_init="lif",
            stem="cifar",
            stem_padding=1,
            dtype="float32",
            unroll=0,
            lif_impl="scan",
            remat=False,
            conv_grad="auto",
            init="kaiming_fan_out",
        )
    )
    cfg.update(overrides)
    return cfg


def _check(cfg: ml_collections.ConfigDict, key: str, allowed) -> None:
    if cfg[key] not in allowed:
        raise ValueError(f"config.model.{key}={cfg[key]!r} is not valid; choose one of {list(allowed)}")


def make_activation(cfg: ml_collections.ConfigDict) -> layers.ActivationFactory:
    """The activation module factory for ``cfg.neuron`` (ReLU or a spiking neuron)."""
    _check(cfg, "neuron", NEURONS)
    if cfg.neuron == "relu":
        return layers.ReLU
    if cfg.neuron == "psn":
        validate_psn(cfg)
        return functools.partial(
            layers.ParallelSpikingNeuron,
            variant=cfg.get("psn_variant", "full"),
            order=int(cfg.get("psn_order", 2)),
            lam=float(cfg.get("psn_lambda", 1.0)),
            lambda_epochs=float(cfg.get("psn_lambda_epochs", 0.0)),
            surrogate=surrogates.get(cfg.surrogate, float(cfg.surrogate_param)),
            init_scheme=cfg.get("psn_init", "lif"),
            decay=float(cfg.decay),
            v_threshold=float(cfg.v_threshold),
        )
    _check(cfg, "reset", ("hard", "soft"))
    lif_impl = cfg.get("lif_impl", "scan")
    if lif_impl not in neurons.IMPLS:
        raise ValueError(f"config.model.lif_impl={lif_impl!r} is not valid; choose one of {list(neurons.IMPLS)}")
    return functools.partial(
        layers.SpikingNeuron,
        decay=1.0 if cfg.neuron == "if" else float(cfg.decay),
        v_threshold=float(cfg.v_threshold),
        reset=cfg.reset,
        detach_reset=bool(cfg.detach_reset),
        surrogate=surrogates.get(cfg.surrogate, float(cfg.surrogate_param)),
        learnable_decay=cfg.neuron == "plif",
        unroll=True if int(cfg.unroll) == 0 else int(cfg.unroll),
        impl=lif_impl,
    )


def build_model(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    """A Flax module for ``config.model``; ``apply(variables, x, train=...)`` gives logits."""
    _check(cfg, "name", MODEL_NAMES)
    _check(cfg, "dtype", DTYPES)
    if int(cfg.time_steps) < 1:
        raise ValueError(f"config.model.time_steps must be >= 1, got {cfg.time_steps}")
    if int(cfg.width) < 1:
        raise ValueError(f"config.model.width must be >= 1, got {cfg.width}")
    spiking = cfg.neuron != "relu"
    if not spiking and int(cfg.time_steps) != 1:
        raise ValueError(f"an ANN (neuron='relu') needs config.model.time_steps=1, got {cfg.time_steps}")
    conv_grad = cfg.get("conv_grad", "auto")
    if conv_grad not in resnet_lib.CONV_GRADS:
        raise ValueError(
            f"config.model.conv_grad={conv_grad!r} is not valid; choose one of {list(resnet_lib.CONV_GRADS)}"
        )
    name = cfg.name
    connect = "standard"
    if name.startswith("sew_"):
        name, connect = name[len("sew_") :], "sew_add"
    return resnet_lib.resnet(
        int(name[len("resnet") :]),
        num_classes,
        activation=make_activation(cfg),
        time_steps=int(cfg.time_steps),
        width=int(cfg.width),
        stem=cfg.get("stem", "cifar"),
        stem_padding=int(cfg.stem_padding),
        connect=connect,
        bn_scale_init=_bn_scale_init(cfg),
        dtype=DTYPES[cfg.dtype],
        remat=_flag(cfg, "remat"),
        conv_grad=conv_grad,
        weight_init=cfg.get("init", "kaiming_fan_out"),
    )


def _bn_scale_init(cfg: ml_collections.ConfigDict) -> float:
    """BN gamma at init: 1 for an ANN, the threshold for an SNN (tdBN): ``v_threshold``, or, for a PSN
    started as SpikingJelly's, its initial threshold ``-bias = 1``."""
    if cfg.neuron == "relu":
        return 1.0
    if cfg.neuron == "psn" and cfg.get("psn_init", "lif") == "spikingjelly":
        return -neurons.PSN_BIAS_INIT
    return float(cfg.v_threshold)


def _flag(cfg: ml_collections.ConfigDict, key: str) -> bool:
    value = cfg.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"config.model.{key} must be True or False, got {value!r}")
    return value


build = build_model  # the registry's entry point for this family


def _fail(prefix: str, key: str, value, allowed: str) -> None:
    raise ValueError(f"config.{prefix}.{key}={value!r} is not valid: {allowed}")


def validate_psn(m: ml_collections.ConfigDict, prefix: str = "model") -> None:
    """Check the PSN keys of a ``model`` section with ``neuron='psn'`` (absent keys take the defaults)."""
    variant = m.get("psn_variant", "full")
    if variant not in neurons.PSN_VARIANTS:
        _fail(prefix, "psn_variant", variant, f"choose one of {list(neurons.PSN_VARIANTS)}")
    order = m.get("psn_order", 2)
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        _fail(prefix, "psn_order", order, "must be an integer >= 1 (k of the masked and sliding PSN)")
    lam = m.get("psn_lambda", 1.0)
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= float(lam) <= 1.0:
        _fail(prefix, "psn_lambda", lam, "must be in [0, 1] (the masked PSN's lambda; 1 = fully masked)")
    ramp = m.get("psn_lambda_epochs", 0.0)
    if isinstance(ramp, bool) or not isinstance(ramp, (int, float)) or float(ramp) < 0.0:
        _fail(prefix, "psn_lambda_epochs", ramp, "must be >= 0 (epochs over which lambda ramps to 1; 0 = fixed)")
    if float(ramp) > 0.0 and variant != "masked":
        _fail(
            prefix,
            "psn_lambda_epochs",
            ramp,
            f"ramps the masked PSN's lambda, but psn_variant={variant!r}; set psn_variant=masked or leave it 0",
        )
    init = m.get("psn_init", "lif")
    if init not in neurons.PSN_INITS:
        _fail(
            prefix,
            "psn_init",
            init,
            f"choose one of {list(neurons.PSN_INITS)} (lif: start as a LIF neuron without reset)",
        )
    if m.get("surrogate") == "stdb":
        _fail(prefix, "surrogate", "stdb", "PSN neurons have no spike timing for STDB; choose another surrogate")


def validate(m: ml_collections.ConfigDict, prefix: str = "model") -> None:
    """Check a ResNet ``model`` section (errors name ``config.<prefix>.<key>`` and the allowed values)."""
    checks = {
        "name": MODEL_NAMES,
        "neuron": NEURONS,
        "reset": neurons.RESETS,
        "dtype": tuple(DTYPES),
        "stem": ("cifar", "imagenet", "imagenet_nopool"),
        "init": initializers.INITS,
    }
    for key, allowed in checks.items():
        if key in m and m[key] not in allowed:
            _fail(prefix, key, m[key], f"choose one of {list(allowed)}")
    if m.surrogate not in surrogates.NAMES:
        _fail(prefix, "surrogate", m.surrogate, f"choose one of {sorted(surrogates.NAMES)}")
    if int(m.time_steps) < 1:
        _fail(prefix, "time_steps", m.time_steps, "must be >= 1 (T=4..6 in the papers)")
    if m.neuron == "relu" and int(m.time_steps) != 1:
        _fail(prefix, "time_steps", m.time_steps, "an ANN (neuron='relu') runs with time_steps=1")
    if int(m.width) < 1:
        _fail(prefix, "width", m.width, "must be >= 1")
    if float(m.v_threshold) <= 0:
        _fail(prefix, "v_threshold", m.v_threshold, "must be > 0")
    if not 0.0 <= float(m.decay) <= 1.0:
        _fail(prefix, "decay", m.decay, "must be in [0, 1]")
    if float(m.surrogate_param) <= 0:
        _fail(prefix, "surrogate_param", m.surrogate_param, "must be > 0")
    if m.neuron == "psn":
        validate_psn(m, prefix)
