"""The sharpened ReLU of pipe-S: forward clamp per epoch and the official straight-through gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.methods.pretrain.sharpened import SharpenedReLU

# ---------------------------------------------------------------------------------------------- sharpened ReLU


@pytest.mark.parametrize("epoch,a,b", [(0, 0.0, 1.0), (50, 0.25, 0.75), (100, 0.49, 0.5), (160, 0.49, 0.5)])
def test_sharpened_relu_forward_and_gradient(epoch, a, b):
    act = SharpenedReLU(horizon_epochs=200.0)
    x = jnp.asarray(np.linspace(-0.5, 1.5, 41) + 0.013, jnp.float32)  # no point exactly on a kink
    variables = {"schedule": {"epoch": jnp.float32(epoch)}}
    y = act.apply(variables, x)
    np.testing.assert_allclose(y, np.clip((np.asarray(x) - a) / (b - a), 0, 1), atol=1e-6)
    grad = jax.grad(lambda v: act.apply(variables, v).sum())(x)
    np.testing.assert_array_equal(grad, ((np.asarray(x) > 0) & (np.asarray(x) < 1)).astype(np.float32))
