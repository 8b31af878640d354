"""Parallel spiking neurons (snnjax.neurons.psn / masked_psn / sliding_psn, layers.ParallelSpikingNeuron)
against plain NumPy loops written from the paper's / SpikingJelly's equations, and their gradients
against the NumPy chain rule through the surrogate."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import layers, neurons, surrogates

ALPHA = 2.0  # atan's shape parameter (SpikingJelly's PSN default surrogate: ATan(alpha=2))


def np_atan_grad(x):
    return (ALPHA / 2) / (1 + (math.pi / 2 * ALPHA * x) ** 2)


def np_mask(t, k, lam):
    """lambda * M_k + (1 - lambda) * J with M_k[i][j] = 1 iff j <= i <= j + k - 1 (a loop, not tril/triu)."""
    m = np.zeros((t, t))
    for i in range(t):
        for j in range(t):
            if j <= i <= j + k - 1:
                m[i, j] = 1.0
    return lam * m + (1 - lam) * np.ones((t, t))


def np_psn_h(x, weight, bias):
    """H[b, t] = sum_s W[t, s] X[b, s] + b[t], as a loop over t and s (float64)."""
    b, t = x.shape[:2]
    h = np.zeros(x.shape)
    for i in range(t):
        for s in range(t):
            h[:, i] += weight[i, s] * x[:, s]
        h[:, i] += bias[i] if np.ndim(bias) else bias
    return h


def np_sliding_h(x, taps, bias):
    """H[t] = sum_{i<k} taps[i] X[t-k+1+i] + bias, X before step 0 = 0."""
    k, t = len(taps), x.shape[1]
    h = np.full(x.shape, float(bias))
    for step in range(t):
        for i in range(k):
            src = step - k + 1 + i
            if src >= 0:
                h[:, step] += taps[i] * x[:, src]
    return h


def _data(t, seed=0, shape=(3, 5, 2)):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 1.0, size=(shape[0], t) + shape[1:]).astype(np.float32)
    w = rng.uniform(-1, 1, size=(t, t)).astype(np.float32)
    b = rng.uniform(-0.5, 0.3, size=(t,)).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize("t", [1, 3, 4])
def test_psn_forward_matches_numpy(t):
    x, w, b = _data(t)
    spikes, h = neurons.psn(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), surrogates.atan(), return_membrane=True)
    h_ref = np_psn_h(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(np.asarray(h), h_ref, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(spikes), (h_ref > 0).astype(np.float32))
    assert spikes.dtype == jnp.float32 and 0 < float(spikes.mean()) < 1


@pytest.mark.parametrize("k,lam", [(1, 1.0), (2, 1.0), (2, 0.3), (3, 0.0), (6, 1.0)])
def test_masked_psn_forward_matches_numpy(k, lam):
    x, w, b = _data(4, seed=1)
    spikes, h = neurons.masked_psn(
        jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), k, lam, surrogates.atan(), return_membrane=True
    )
    h_ref = np_psn_h(x.astype(np.float64), np_mask(4, k, lam) * w, b.astype(np.float64))
    np.testing.assert_allclose(np.asarray(h), h_ref, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(spikes), (h_ref > 0).astype(np.float32))


def test_masked_psn_at_lambda_1_only_sees_the_last_k_steps():
    x, w, b = _data(5, seed=2)
    x2 = x.copy()
    x2[:, 0] += 100.0  # step 0 is outside step 2's window when k = 2
    h1 = neurons.masked_psn(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), 2, 1.0, return_membrane=True)[1]
    h2 = neurons.masked_psn(jnp.asarray(x2), jnp.asarray(w), jnp.asarray(b), 2, 1.0, return_membrane=True)[1]
    np.testing.assert_array_equal(np.asarray(h1)[:, 2:], np.asarray(h2)[:, 2:])
    assert not np.allclose(np.asarray(h1)[:, :2], np.asarray(h2)[:, :2])


@pytest.mark.parametrize("k,t", [(1, 4), (2, 4), (3, 2), (4, 7)])
def test_sliding_psn_forward_matches_numpy_at_any_t(k, t):
    x, _, _ = _data(t, seed=3)
    taps = np.random.default_rng(4).uniform(-1, 1, size=(k,)).astype(np.float32)
    spikes, h = neurons.sliding_psn(jnp.asarray(x), jnp.asarray(taps), jnp.asarray(-0.3), return_membrane=True)
    h_ref = np_sliding_h(x.astype(np.float64), taps.astype(np.float64), -0.3)
    np.testing.assert_allclose(np.asarray(h), h_ref, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(spikes), (h_ref > 0).astype(np.float32))


def test_initialisation_is_spikingjellys():
    # kaiming_uniform(a=sqrt(5)) of [T, T]: U(-1/sqrt(T), 1/sqrt(T)); bias -1; sliding taps (..., 1/4, 1/2, 1).
    w = np.asarray(neurons.psn_weight_init(jax.random.key(0), (64, 64)))
    assert np.abs(w).max() <= 1 / 8 and np.abs(w).max() > 0.99 / 8 and abs(w.mean()) < 0.01
    np.testing.assert_array_equal(np.asarray(neurons.sliding_psn_exp_init(4)), [0.125, 0.25, 0.5, 1.0])
    mod = layers.ParallelSpikingNeuron(variant="full", init_scheme="spikingjelly")
    v = mod.init(jax.random.key(1), jnp.zeros((2 * 4, 3)), 4)
    np.testing.assert_array_equal(np.asarray(v["params"]["bias"]), -np.ones(4))
    w = np.asarray(v["params"]["weight"])
    assert np.abs(w).max() <= 0.5 and np.triu(w, 1).any()  # random, not causal
    sliding = layers.ParallelSpikingNeuron(variant="sliding", order=3, init_scheme="spikingjelly")
    v = sliding.init(jax.random.key(1), jnp.zeros((8, 3)), 4)
    np.testing.assert_array_equal(np.asarray(v["params"]["weight"]), [0.25, 0.5, 1.0])
    assert v["params"]["bias"].shape == () and float(v["params"]["bias"]) == -1.0


def _np_lif_without_reset(x, decay, v_threshold):
    """Spikes of a LIF neuron without reset, by its recursion: u[t] = decay u[t-1] + x[t], s = u > v_th."""
    u = np.zeros_like(x[:, 0])
    spikes = np.zeros_like(x)
    for t in range(x.shape[1]):
        u = decay * u + x[:, t]
        spikes[:, t] = u > v_threshold
    return spikes


@pytest.mark.parametrize("variant", ["full", "masked", "sliding"])
def test_lif_initialisation_starts_as_a_lif_neuron_without_reset(variant):
    # The default init: every variant's first forward pass is the no-reset LIF neuron of (decay, v_threshold);
    # the sliding and masked ones truncated to their k = T steps here, so all three see the whole past.
    t, decay, v_th = 5, 0.3, 0.6
    x = np.random.default_rng(7).normal(0.3, 0.5, size=(6, t, 4)).astype(np.float32)
    mod = layers.ParallelSpikingNeuron(variant=variant, order=t, decay=decay, v_threshold=v_th)
    v = mod.init(jax.random.key(0), jnp.zeros((6 * t, 4)), t)
    assert np.all(np.asarray(v["params"]["bias"]) == np.float32(-v_th))
    spikes = layers.split_time(mod.apply(v, layers.merge_time(jnp.asarray(x)), t), t)
    np.testing.assert_array_equal(np.asarray(spikes), _np_lif_without_reset(x.astype(np.float64), decay, v_th))
    np.testing.assert_allclose(
        np.asarray(neurons.psn_lif_weight(3, 0.5)), [[1, 0, 0], [0.5, 1, 0], [0.25, 0.5, 1]], rtol=0, atol=0
    )


def _np_grads(x, w_eff, b, g_out):
    """dL/dX, dL/dW_eff, dL/db of L = sum(G * S), S = H(W_eff X + b), through the atan surrogate."""
    h = np_psn_h(x, w_eff, b)
    g_h = g_out * np_atan_grad(h)
    t = x.shape[1]
    g_x = np.zeros_like(x)
    g_w = np.zeros((t, t))
    for i in range(t):
        for s in range(t):
            g_x[:, s] += w_eff[i, s] * g_h[:, i]
            g_w[i, s] = np.sum(g_h[:, i] * x[:, s])
    g_b = np.array([g_h[:, i].sum() for i in range(t)])
    return g_x, g_w, g_b, g_h


@pytest.mark.parametrize("variant", ["full", "masked", "sliding"])
def test_gradients_match_the_numpy_chain_rule(variant):
    t, k, lam = 4, 2, 0.6
    x, w, b = _data(t, seed=5)
    g_out = np.random.default_rng(6).normal(size=x.shape)
    taps = np.array([0.3, -0.7], np.float32)
    sg = surrogates.atan(ALPHA)
    x64, g64 = x.astype(np.float64), g_out.astype(np.float64)

    if variant == "full":
        fn = lambda x_, w_, b_: jnp.sum(neurons.psn(x_, w_, b_, sg) * g_out)  # noqa: E731
        args = (x, w, b)
        g_x, g_w, g_b, _ = _np_grads(x64, w.astype(np.float64), b.astype(np.float64), g64)
        expected = (g_x, g_w, g_b)
    elif variant == "masked":
        fn = lambda x_, w_, b_: jnp.sum(neurons.masked_psn(x_, w_, b_, k, lam, sg) * g_out)  # noqa: E731
        args = (x, w, b)
        mask = np_mask(t, k, lam)
        g_x, g_weff, g_b, _ = _np_grads(x64, mask * w, b.astype(np.float64), g64)
        expected = (g_x, mask * g_weff, g_b)
    else:
        fn = lambda x_, w_, b_: jnp.sum(neurons.sliding_psn(x_, w_, b_, sg) * g_out)  # noqa: E731
        args = (x, taps, np.float32(-0.2))
        matrix = np.zeros((t, t))
        for i in range(t):
            for j in range(t):
                if 0 <= i - j < k:
                    matrix[i, j] = taps[k - 1 - (i - j)]
        g_x, _, _, g_h = _np_grads(x64, matrix, np.full(t, -0.2), g64)
        g_taps = np.zeros(k)
        for step in range(t):
            for i in range(k):
                if step - k + 1 + i >= 0:
                    g_taps[i] += np.sum(g_h[:, step] * x64[:, step - k + 1 + i])
        expected = (g_x, g_taps, g_h.sum())
    got = jax.jit(jax.grad(fn, argnums=(0, 1, 2)))(*(jnp.asarray(a) for a in args))
    for name, a, e in zip(("x", "weight", "bias"), got, expected):
        assert np.asarray(a).shape == np.shape(e), name
        np.testing.assert_allclose(np.asarray(a), e, rtol=2e-4, atol=2e-4, err_msg=name)
    assert np.abs(np.asarray(got[1])).max() > 1e-3  # the surrogate passed a gradient


def test_layer_merged_layout_spike_stats_and_bf16():
    x = jax.random.normal(jax.random.key(0), (2 * 3, 4, 4, 2)) + 1.0
    mod = layers.ParallelSpikingNeuron(variant="full", surrogate=surrogates.atan())
    v = mod.init(jax.random.key(1), x, 3)
    out, stats = jax.jit(lambda v_, x_: mod.apply(v_, x_, 3, mutable=["spike_stats"]))(v, x)
    p = v["params"]
    ref = np_psn_h(np.asarray(x, np.float64).reshape(2, 3, 4, 4, 2), np.asarray(p["weight"]), np.asarray(p["bias"]))
    np.testing.assert_array_equal(np.asarray(out), (ref > 0).reshape(6, 4, 4, 2).astype(np.float32))
    np.testing.assert_allclose(float(stats["spike_stats"]["firing_rate"][0]), (ref > 0).mean(), rtol=1e-6)
    assert layers.ParallelSpikingNeuron.emits_spikes is True
    out16 = mod.apply(v, x.astype(jnp.bfloat16), 3)
    assert out16.dtype == jnp.bfloat16 and set(np.unique(np.asarray(out16, np.float32))) <= {0.0, 1.0}


def test_a_t_x_t_weight_refuses_another_t_and_sliding_runs_at_any_t():
    x4, x8 = jnp.ones((2 * 4, 3)), jnp.ones((2 * 8, 3))
    for variant in ("full", "masked"):
        mod = layers.ParallelSpikingNeuron(variant=variant)
        v = mod.init(jax.random.key(0), x4, 4)
        with pytest.raises(ValueError, match=r"T=4.*T=8.*psn_variant='sliding'"):
            mod.apply(v, x8, 8)
    mod = layers.ParallelSpikingNeuron(variant="sliding", order=2)
    v = mod.init(jax.random.key(0), x4, 4)
    taps = np.asarray(v["params"]["weight"])
    xs = np.random.default_rng(0).normal(size=(2, 8, 3)).astype(np.float32)
    out = mod.apply(v, jnp.asarray(xs.reshape(16, 3)), 8)
    bias = float(v["params"]["bias"])
    ref = np_sliding_h(xs.astype(np.float64), taps.astype(np.float64), bias) > 0
    np.testing.assert_array_equal(np.asarray(out), ref.reshape(16, 3).astype(np.float32))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown PSN variant"):
        layers.ParallelSpikingNeuron(variant="diag").init(jax.random.key(0), jnp.ones((4, 2)), 2)
    with pytest.raises(ValueError, match="unknown PSN init 'glorot'"):
        layers.ParallelSpikingNeuron(init_scheme="glorot").init(jax.random.key(0), jnp.ones((4, 2)), 2)
    with pytest.raises(ValueError, match="spike timing"):
        neurons.psn(jnp.ones((1, 2, 3)), jnp.eye(2), jnp.zeros(2), surrogates.stdb())
    with pytest.raises(ValueError, match=r"needs \(3, 3\)"):
        neurons.psn(jnp.ones((1, 3, 2)), jnp.eye(2), jnp.zeros(2))
    with pytest.raises(ValueError, match="order k >= 1"):
        neurons.psn_mask(4, 0)
    assert isinstance(layers.ParallelSpikingNeuron(), nn.Module)
