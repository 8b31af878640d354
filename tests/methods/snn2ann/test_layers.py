"""SNN2ANN layers: IF counts with per-neuron thresholds, ATA inside the neuron, the shared conv + BN.

Numbers are hand-computed."""

import jax
import jax.numpy as jnp
import numpy as np

from snnjax import models
from snnjax.methods import snn2ann
from snnjax.methods.snn2ann import MappedIFNeuron, SharedConvBN

T = 4


# ---------------------------------------------------------------------------------------------
# IF neuron with per-neuron thresholds, and the ANN activation it maps to
# ---------------------------------------------------------------------------------------------


def _if_count_by_hand(current: float, v: float, steps: int) -> int:
    """Hard reset to 0, spike when mem > v: with constant I > 0 the neuron fires every k steps,
    k = the smallest k with k*I > v = floor(v/I) + 1, so count = floor(T / k) (<= floor(T*I/v))."""
    return 0 if current <= 0 else steps // (int(np.floor(v / current)) + 1)


CASES = [  # (constant current I, threshold v, expected count over T=4 or 6, see the docstring)
    (0.3, 0.5, 2),
    (0.4, 0.5, 2),
    (0.5, 0.5, 2),
    (0.6, 0.5, 4),
    (0.2, 0.5, 1),
    (0.0, 0.5, 0),
    (-1.0, 0.1, 0),
    (0.26, 0.75, 1),
    (1.0, 0.3, 4),
]


def test_if_neuron_spike_counts_for_constant_input_match_hand_values():
    currents = jnp.array([c for c, _, _ in CASES], jnp.float32)
    vth = jnp.array([v for _, v, _ in CASES], jnp.float32)
    expected = np.array([n for _, _, n in CASES], np.float32)
    assert [_if_count_by_hand(c, v, T) for c, v, _ in CASES] == list(expected)
    current = jnp.broadcast_to(currents, (2, T, len(CASES)))  # [B, T, neurons]
    preact = jnp.stack([currents * T, -jnp.ones_like(currents)])  # example 1: the ANN is silent
    for unit in ("stsu", "resu"):
        neuron = MappedIFNeuron(mapping_unit=unit)
        (spikes, ann_out) = neuron.apply({"thresholds": {"vth": vth}}, current, preact, train=False)
        np.testing.assert_array_equal(spikes.sum(1)[0], expected)
        np.testing.assert_array_equal(spikes.sum(1)[1], expected)
        # STSU: the ANN activation IS the count; ReSU: the count where ReLU(preact) > 0, else 0.
        np.testing.assert_array_equal(ann_out[0], expected * (1 if unit == "stsu" else (currents > 0)))
        np.testing.assert_array_equal(ann_out[1], expected if unit == "stsu" else np.zeros_like(expected))


def test_if_hard_reset_spike_train_by_hand():
    # I = 0.3, v = 0.5: mem 0.3, 0.6 -> spike, reset 0 -> 0.3, 0.6 -> spike.
    neuron = MappedIFNeuron()
    spikes, _ = neuron.apply({"thresholds": {"vth": jnp.array([0.5])}}, jnp.full((1, T, 1), 0.3), None, train=False)
    np.testing.assert_array_equal(spikes[0, :, 0], [0, 1, 0, 1])


def test_thresholds_are_uniform_in_unit_interval_and_not_params():
    x = jnp.zeros((2, 8, 8, 3))
    model = models.build(snn2ann.model_config(layers="2,M", width=4, dropout=(0.0,)), 10)
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
    vth = variables["thresholds"]["layer0_neuron"]["vth"]
    assert vth.shape == (4, 4, 8)  # [H, W, C] after the pool
    assert 0.0 <= float(vth.min()) and float(vth.max()) < 1.0 and 0.35 < float(vth.mean()) < 0.65
    assert "layer0_neuron" not in variables["params"]


def test_neuron_applies_ata_in_training_only_when_thresholds_are_mutable():
    vth = jnp.array([0.5, 0.5])
    current = jnp.broadcast_to(jnp.array([0.6, 0.6]), (1, T, 2))  # both fire every step
    preact = jnp.array([[-1.0, 1.0]])  # neuron 0 is noisy: r = 1/2
    neuron = MappedIFNeuron()
    _, new = neuron.apply({"thresholds": {"vth": vth}}, current, preact, train=True, mutable=["thresholds"])
    np.testing.assert_allclose(new["thresholds"]["vth"], [0.51, 0.51], rtol=1e-6)
    _, new = neuron.apply({"thresholds": {"vth": vth}}, current, preact, train=False, mutable=["thresholds"])
    np.testing.assert_array_equal(new["thresholds"]["vth"], vth)
    quiet = jnp.array([[1.0, 1.0]])  # no noisy spike: r = 0
    _, new = neuron.apply({"thresholds": {"vth": vth}}, current, quiet, train=True, mutable=["thresholds"])
    np.testing.assert_array_equal(new["thresholds"]["vth"], vth)
    off = MappedIFNeuron(adapt_threshold=False)
    _, new = off.apply({"thresholds": {"vth": vth}}, current, preact, train=True, mutable=["thresholds"])
    np.testing.assert_array_equal(new["thresholds"]["vth"], vth)


# ---------------------------------------------------------------------------------------------
# BN folding and the shared conv + BN layer
# ---------------------------------------------------------------------------------------------


def _random_layer_variables(key, cin, cout):
    k = jax.random.split(key, 6)
    return {
        "params": {
            "conv_kernel": jax.random.normal(k[0], (3, 3, cin, cout)),
            "conv_bias": jax.random.normal(k[1], (cout,)),
            "bn_scale": jax.random.uniform(k[2], (cout,), minval=0.5, maxval=2.0),
            "bn_bias": jax.random.normal(k[3], (cout,)),
        },
        "batch_stats": {
            "bn_mean": jax.random.normal(k[4], (cout,)),
            "bn_var": jax.random.uniform(k[5], (cout,), minval=0.5, maxval=3.0),
        },
    }


def test_snn_current_summed_over_time_equals_ann_preactivation_in_inference():
    v = _random_layer_variables(jax.random.key(5), 2, 3)
    spikes = (jax.random.uniform(jax.random.key(6), (2, T, 5, 5, 2)) < 0.4).astype(jnp.float32)
    layer = SharedConvBN(3)
    current, preact = layer.apply(v, spikes, spikes.sum(1), time_steps=T, train=False)
    assert current.shape == (2, T, 5, 5, 3)
    # The bias is split over T, so sum_t (W' s_t + b'/T) = W' count + b' = BN_eval(conv(count)).
    np.testing.assert_allclose(current.sum(1), preact, rtol=1e-4, atol=1e-4)


def test_ann_batchnorm_uses_batch_statistics_and_updates_running_ones_in_training():
    v = _random_layer_variables(jax.random.key(7), 2, 3)
    x = jax.random.normal(jax.random.key(8), (4, 5, 5, 2))
    (_, preact), new = SharedConvBN(3).apply(v, x, x, time_steps=T, train=True, mutable=["batch_stats"])
    y = (
        jax.lax.conv_general_dilated(
            x, v["params"]["conv_kernel"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        + v["params"]["conv_bias"]
    )
    mean, var = np.asarray(y).mean((0, 1, 2)), np.asarray(y).var((0, 1, 2))
    ref = (np.asarray(y) - mean) / np.sqrt(var + 1e-5) * v["params"]["bn_scale"] + v["params"]["bn_bias"]
    np.testing.assert_allclose(preact, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        new["batch_stats"]["bn_mean"], 0.9 * v["batch_stats"]["bn_mean"] + 0.1 * mean, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        new["batch_stats"]["bn_var"], 0.9 * v["batch_stats"]["bn_var"] + 0.1 * var, rtol=1e-5, atol=1e-6
    )
