"""STDB / linear-surrogate IF neurons: forward dynamics and gradients against hand-computed values."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import surrogates
from snnjax.methods.hybrid import neuron


def _reference_forward(currents, theta, leak):
    """NumPy soft-reset neuron: spikes, membranes and dt per step (one neuron, currents [T])."""
    u, s_prev, dt = 0.0, 0.0, neuron.NEVER_SPIKED
    spikes, membranes, dts = [], [], []
    for current in currents:
        u = leak * u - theta * s_prev + current
        s = float(u / theta - 1.0 > 0)
        spikes.append(s)
        membranes.append(u)
        dts.append(dt)
        dt = 1.0 if s else dt + 1.0
        s_prev = s
    return np.array(spikes), np.array(membranes), np.array(dts)


def test_forward_matches_numpy_soft_reset_and_spike_times():
    currents = np.array([0.3, 0.9, 0.2, 1.6, 0.0, 0.0, 2.5, 0.1], np.float32)
    theta, leak = 1.0, 0.9
    spikes, final = neuron.if_neurons(jnp.asarray(currents)[None, :, None], v_threshold=theta, decay=leak)
    ref_s, ref_u, ref_dt = _reference_forward(currents, theta, leak)
    np.testing.assert_array_equal(np.asarray(spikes)[0, :, 0], ref_s)
    # Spikes by hand: u = .3, 1.17 (fire), .253, 1.828 (fire), .645, .581, 3.022 (fire), 1.820 (fire).
    np.testing.assert_array_equal(ref_s, [0, 1, 0, 1, 0, 0, 1, 1])
    np.testing.assert_allclose(float(final.membrane[0, 0]), ref_u[-1], rtol=1e-6)
    assert float(final.since_spike[0, 0]) == 1.0  # fired at the last step


def test_stdb_gradient_matches_formula_with_known_spike_history():
    # IF neuron (decay 1), theta = 2: u[t] = sum_{k<=t} I[k] - theta * sum_{k<t} s[k], reset detached,
    # so ds[t]/dI[k] = sigma_t / theta for k <= t with sigma_t = alpha * exp(-beta * dt[t]).
    theta, alpha, beta = 2.0, 0.3, 0.2
    currents = np.array([2.5, 0.5, 0.1, 2.0, 1.2, 0.4], np.float32)
    ref_s, _, ref_dt = _reference_forward(currents, theta, 1.0)
    np.testing.assert_array_equal(ref_s, [1, 0, 0, 1, 1, 0])
    # dt by hand: never fired at t=0 -> 1000; then 1 (fired at 0), 2, 3, 1 (fired at 3), 1 (fired at 4).
    np.testing.assert_array_equal(ref_dt, [1000, 1, 2, 3, 1, 1])
    c = np.array([1.0, -2.0, 0.5, 3.0, 1.5, -1.0], np.float32)  # loss = sum_t c_t s_t
    grad = surrogates.stdb(alpha, beta)

    def loss(i):
        spikes, _ = neuron.if_neurons(i[None, :, None], v_threshold=theta, surrogate=grad)
        return jnp.sum(spikes[0, :, 0] * c)

    got = np.asarray(jax.grad(loss)(jnp.asarray(currents)))
    sigma = alpha * np.exp(-beta * ref_dt)
    want = np.array([sum(c[t] * sigma[t] / theta for t in range(k, 6)) for k in range(6)])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert sigma[0] < 1e-80  # never spiked: no gradient to speak of


def test_linear_gradient_matches_formula_with_leak():
    theta, leak, gamma = 1.5, 0.8, 0.3
    currents = np.array([1.0, 1.0, 0.2, 1.4, 0.3], np.float32)
    _, u, _ = _reference_forward(currents, theta, leak)
    grad = surrogates.linear(gamma)

    def loss(i):
        spikes, _ = neuron.if_neurons(i[None, :, None], v_threshold=theta, decay=leak, surrogate=grad)
        return jnp.sum(spikes)

    got = np.asarray(jax.grad(loss)(jnp.asarray(currents)))
    sigma = gamma * np.maximum(0.0, 1.0 - np.abs(u / theta - 1.0))
    want = np.array([sum(leak ** (t - k) * sigma[t] / theta for t in range(k, 5)) for k in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert np.count_nonzero(want) >= 3


def test_chunked_run_equals_one_pass():
    currents = jax.random.uniform(jax.random.key(0), (3, 12, 4), minval=0.0, maxval=1.5)
    run = functools.partial(neuron.if_neurons, v_threshold=0.9, decay=0.95)
    whole, final = run(currents)
    first, state = run(currents[:, :5])
    second, state = run(currents[:, 5:], state=state)
    np.testing.assert_array_equal(np.concatenate([first, second], axis=1), whole)
    for a, b in zip(state, final):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_invalid_settings_name_the_fix():
    with pytest.raises(ValueError, match="config.model.surrogate"):
        surrogates.get("exp")
    with pytest.raises(ValueError, match="beta"):
        surrogates.stdb(0.3, -0.1)
    with pytest.raises(ValueError, match="decay"):
        neuron.if_neurons(jnp.ones((1, 2)), v_threshold=1.0, decay=1.5)
