"""Neuron scans against an independent NumPy loop and an unrolled second implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import neurons, surrogates


def numpy_lif(currents, decay, v_th, reset):
    """Reference: the official IDSNN update written as a plain loop over time (axis 1)."""
    b, t = currents.shape[:2]
    u = np.zeros((b,) + currents.shape[2:])
    s = np.zeros_like(u)
    spikes, mems = [], []
    for k in range(t):
        if reset == "hard":
            u = decay * u * (1 - s) + currents[:, k]
        else:
            u = decay * u - v_th * s + currents[:, k]
        s = (u > v_th).astype(np.float64)
        spikes.append(s)
        mems.append(u)
    return np.stack(spikes, 1), np.stack(mems, 1)


@pytest.mark.parametrize(
    "decay,v_th,reset,t",
    [
        (0.25, 0.5, "hard", 4),
        (0.5, 1.0, "hard", 6),
        (1.0, 1.0, "soft", 8),
        (0.9, 0.3, "soft", 5),
        (1.0, 0.5, "hard", 1),
    ],
)
def test_lif_matches_numpy_loop(decay, v_th, reset, t):
    rng = np.random.default_rng(0)
    currents = rng.normal(0.3, 0.6, size=(3, t, 5, 2)).astype(np.float32)
    spikes, mem = neurons.lif(jnp.asarray(currents), decay=decay, v_threshold=v_th, reset=reset, return_membrane=True)
    ref_s, ref_u = numpy_lif(currents.astype(np.float64), decay, v_th, reset)
    np.testing.assert_allclose(mem, ref_u, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(spikes, ref_s)
    assert spikes.shape == currents.shape and spikes.dtype == jnp.float32
    assert 0 < ref_s.mean() < 1  # the case exercises both spiking and silence


def test_hand_computed_trace():
    # decay 0.25, V_th 0.5, constant current 0.4: u = 0.4, 0.5 (not > 0.5), 0.525 -> spike, reset: 0.4
    s, u = neurons.lif(jnp.full((1, 4, 1), 0.4), return_membrane=True)
    np.testing.assert_allclose(u[0, :, 0], [0.4, 0.5, 0.525, 0.4], rtol=1e-6)
    np.testing.assert_array_equal(s[0, :, 0], [0, 0, 1, 0])


def test_integrate_and_fire_is_lif_with_unit_decay_soft_reset():
    x = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (2, 7, 3)), jnp.float32)
    np.testing.assert_array_equal(
        neurons.integrate_and_fire(x, v_threshold=1.0), neurons.lif(x, decay=1.0, v_threshold=1.0, reset="soft")
    )
    # IF with soft reset fires floor(sum(I) / V_th) times for constant positive input (rate coding).
    s = neurons.integrate_and_fire(jnp.full((1, 10, 1), 0.35), v_threshold=1.0)
    assert s.sum() == 3


def _unrolled_lif(currents, decay, v_th, surrogate, detach_reset):
    """Second implementation: a Python loop over time with the same custom_vjp spike."""
    u = jnp.zeros(currents.shape[:1] + currents.shape[2:])
    s = jnp.zeros_like(u)
    outs = []
    for k in range(currents.shape[1]):
        r = jax.lax.stop_gradient(s) if detach_reset else s
        u = decay * u * (1 - r) + currents[:, k]
        s = surrogate(u - v_th)
        outs.append(s)
    return jnp.stack(outs, 1)


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("surrogate", [surrogates.rectangular(1.0), surrogates.sigmoid(4.0)])
def test_gradients_through_scan_match_unrolled_loop(detach_reset, surrogate):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(0.4, 0.5, (4, 6, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(4, 6, 3)), jnp.float32)

    def loss_scan(x, decay):
        return jnp.sum(w * neurons.lif(x, decay=decay, surrogate=surrogate, detach_reset=detach_reset))

    def loss_loop(x, decay):
        return jnp.sum(w * _unrolled_lif(x, decay, 0.5, surrogate, detach_reset))

    g_scan = jax.jit(jax.grad(loss_scan, argnums=(0, 1)))(x, 0.3)
    g_loop = jax.grad(loss_loop, argnums=(0, 1))(x, 0.3)
    np.testing.assert_allclose(g_scan[0], g_loop[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_scan[1], g_loop[1], rtol=1e-5, atol=1e-6)  # PLIF: d/d decay
    assert np.abs(np.asarray(g_scan[0])).sum() > 0
    # full unroll (the batch-major Python loop of neurons.lif) is the same computation
    g_unrolled = jax.grad(
        lambda x: jnp.sum(w * neurons.lif(x, surrogate=surrogate, detach_reset=detach_reset, unroll=True))
    )(x)
    np.testing.assert_allclose(g_unrolled, jax.grad(loss_scan)(x, 0.25), rtol=1e-6)


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("unroll", [True, 5, 2])
def test_full_unroll_path_equals_the_scan_bit_for_bit(reset, unroll):
    x = jax.random.normal(jax.random.PRNGKey(4), (3, 5, 6)) * 0.7 + 0.3
    decay = jnp.linspace(0.2, 0.9, 6)
    run = jax.jit(
        lambda x, u: neurons.lif(x, decay=decay, reset=reset, return_membrane=True, unroll=u), static_argnums=1
    )
    s_ref, u_ref = run(x, 1)
    s, u = run(x, unroll)  # True and 5 (= T) take the batch-major loop, 2 the partially unrolled scan
    assert 0 < float(s_ref.mean()) < 1
    np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(u, u_ref)


def test_detach_reset_changes_gradient():
    x = jnp.asarray(np.random.default_rng(3).uniform(0.2, 1.0, (2, 5, 4)), jnp.float32)
    grads = [
        jax.grad(lambda x: neurons.lif(x, decay=0.8, detach_reset=d, surrogate=surrogates.sigmoid()).sum())(x)
        for d in (True, False)
    ]
    assert not np.allclose(grads[0], grads[1])


def test_per_neuron_thresholds_broadcast():
    x = jnp.full((2, 3, 4), 0.6)
    s = neurons.lif(x, decay=1.0, v_threshold=jnp.array([0.5, 0.7, 1.0, 2.0]), reset="soft")
    # cumulative sums 0.6, 1.2, 1.8 with soft reset at the per-neuron threshold
    np.testing.assert_array_equal(s[0].sum(0), [3, 2, 1, 0])


def test_bfloat16_currents_keep_float32_membrane():
    x = jnp.full((1, 3, 1), 0.3, jnp.bfloat16)
    s, u = neurons.lif(x, return_membrane=True)
    assert s.dtype == jnp.bfloat16 and u.dtype == jnp.float32


def test_bad_arguments():
    with pytest.raises(ValueError, match="reset"):
        neurons.lif(jnp.zeros((1, 2)), reset="zero")
    with pytest.raises(ValueError, match=r"\[B, T"):
        neurons.lif(jnp.zeros((3,)))
