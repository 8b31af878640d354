"""Weight initialisers, chosen by name (``config.model.init``).

``kaiming_fan_out``: torchvision's ResNet init, He normal over fan-out (variance 2 / fan_out) for
convs; Flax defaults (LeCun normal kernel, zero bias) for the FC head.

``pytorch``: what a PyTorch model gets when its code has no init of its own (the official IDSNN
``models/S_ResNet.py`` and ``models/ResNet.py``): ``kaiming_uniform_(a=sqrt(5))`` for conv and
linear weights, i.e. U(+-1/sqrt(fan_in)) (variance 1 / (3 fan_in)), and biases U(+-1/sqrt(fan_in)).
At C_in = C_out a 3x3 conv kernel is then ~2.45x smaller than under ``kaiming_fan_out``, which
under BatchNorm means a ~6x larger effective learning rate for the same nominal lr.

Fan-in is ``prod(kernel_shape[:-1])`` (Flax's [kh, kw, in, out] and [in, out] layouts), as in
PyTorch's ``_calculate_fan_in_and_fan_out``.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]
INITS = ("kaiming_fan_out", "pytorch")

# U(-b, b) has variance b^2 / 3; b = 1/sqrt(fan_in) gives variance 1 / (3 fan_in).
_pytorch_weight = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _check(init: str) -> None:
    if init not in INITS:
        raise ValueError(f"config.model.init={init!r} is not valid; choose one of {list(INITS)}")


def conv_kernel(init: str) -> Initializer:
    """Kernel initialiser of a conv layer under scheme ``init``."""
    _check(init)
    if init == "pytorch":
        return _pytorch_weight
    return nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def dense_kernel(init: str) -> Initializer:
    """Kernel initialiser of a fully connected layer under scheme ``init``."""
    _check(init)
    return _pytorch_weight if init == "pytorch" else nn.initializers.lecun_normal()


def bias(init: str, fan_in: int) -> Initializer:
    """Bias initialiser of a layer with ``fan_in`` inputs per output under scheme ``init``."""
    _check(init)
    if init != "pytorch":
        return nn.initializers.zeros
    bound = 1.0 / float(fan_in) ** 0.5

    def uniform_bias(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return uniform_bias
