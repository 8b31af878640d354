"""Shared layers: time merging, the activation modules, and THE batch-norm fold (SNN2ANN, NIR export)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import layers


def test_merge_and_split_time_are_inverse_and_batch_major():
    x = jnp.arange(2 * 3 * 4).reshape(2, 3, 4)
    merged = layers.merge_time(x)
    assert merged.shape == (6, 4) and (merged[3] == x[1, 0]).all()
    np.testing.assert_array_equal(layers.split_time(merged, 3), x)
    with pytest.raises(ValueError, match="multiple of time_steps"):
        layers.split_time(merged, 4)


def _conv_bn_variables(key, c_in, c_out):
    k = jax.random.split(key, 6)
    return (
        jax.random.normal(k[0], (3, 3, c_in, c_out)),
        jax.random.normal(k[1], (c_out,)),
        jax.random.uniform(k[2], (c_out,), minval=0.5, maxval=2.0),
        jax.random.normal(k[3], (c_out,)),
        jax.random.normal(k[4], (c_out,)),
        jax.random.uniform(k[5], (c_out,), minval=0.5, maxval=2.0),
    )


def test_fold_batch_norm_equals_flax_conv_then_batchnorm_in_inference_mode():
    kernel, bias, scale, offset, mean, var = _conv_bn_variables(jax.random.key(3), 2, 3)
    x = jax.random.normal(jax.random.key(4), (2, 5, 5, 2))
    conv = nn.Conv(3, (3, 3), padding=((1, 1), (1, 1)))
    bn = nn.BatchNorm(use_running_average=True, epsilon=1e-5)
    ref = bn.apply(
        {"params": {"scale": scale, "bias": offset}, "batch_stats": {"mean": mean, "var": var}},
        conv.apply({"params": {"kernel": kernel, "bias": bias}}, x),
    )
    w, b = layers.fold_batch_norm(kernel, bias, scale, offset, mean, var)
    folded = (
        jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
    )
    np.testing.assert_allclose(folded, ref, rtol=1e-5, atol=1e-5)
    # No conv bias (the ResNet's convs): the same as a zero bias.
    w0, b0 = layers.fold_batch_norm(kernel, None, scale, offset, mean, var)
    w1, b1 = layers.fold_batch_norm(kernel, jnp.zeros(3), scale, offset, mean, var)
    np.testing.assert_array_equal(w0, w1)
    np.testing.assert_array_equal(b0, b1)


def test_fold_batch_norm_keeps_numpy_float64_for_exports():
    values = [np.asarray(v, np.float64) for v in _conv_bn_variables(jax.random.key(5), 2, 4)]
    kernel, _, scale, offset, mean, var = values
    w, b = layers.fold_batch_norm(kernel, None, scale, offset, mean, var)
    assert isinstance(w, np.ndarray) and w.dtype == np.float64 and b.dtype == np.float64
    a = scale / np.sqrt(var + 1e-5)
    np.testing.assert_array_equal(w, kernel * a)
    np.testing.assert_allclose(b, offset - mean * a, rtol=1e-15)


def test_spiking_neuron_module_sows_its_firing_rate():
    module = layers.SpikingNeuron(decay=1.0, v_threshold=0.5)
    x = jnp.full((2 * 4, 3), 0.3)  # B=2, T=4: IF at 0.3 per step fires at t=1 and t=3
    out, stats = module.apply({}, x, 4, mutable=["spike_stats"])
    assert out.shape == x.shape
    assert float(stats["spike_stats"]["firing_rate"][0]) == pytest.approx(0.5)


def test_moved_names_have_no_aliases_left():
    assert not hasattr(layers, "SharpenedReLU")  # lives in snnjax.methods.pretrain.sharpened only
    assert not hasattr(layers, "Activation")  # the unused Protocol is gone
