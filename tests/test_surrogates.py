"""Surrogate spike functions: exact forward step, analytic backward, transformations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import surrogates

X = np.array([-2.0, -0.6, -0.5, -0.49, -0.1, 0.0, 0.1, 0.49, 0.5, 0.6, 2.0], np.float32)


def _analytic(name, p, x):
    x = x.astype(np.float64)
    if name == "rectangular":
        return np.where(np.abs(x) < p / 2, 1 / p, 0.0)
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-p * x))
        return p * s * (1 - s)
    if name == "atan":
        return p / 2 / (1 + (np.pi / 2 * p * x) ** 2)
    if name == "triangle":
        return np.maximum(0, 1 - np.abs(x) / p) / p
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name,param",
    [("rectangular", 1.0), ("rectangular", 0.5), ("sigmoid", 4.0), ("atan", 2.0), ("triangle", 1.0), ("triangle", 0.3)],
)
def test_forward_is_step_and_backward_is_analytic(name, param):
    sg = surrogates.get(name, param)
    np.testing.assert_array_equal(sg(jnp.asarray(X)), (X > 0).astype(np.float32))
    grad = jax.vmap(jax.grad(lambda x: sg(x)))(jnp.asarray(X))
    np.testing.assert_allclose(grad, _analytic(name, param, X), rtol=1e-6, atol=1e-7)


# The hybrid method's two are not normalised step derivatives: "linear" is scaled by its alpha
# (Rathi et al.'s 0.3 * max(0, 1 - |x|)) and "stdb" depends on the time since the last spike.
SMOOTH_STEPS = sorted(surrogates.NAMES - {"linear", "stdb"})


@pytest.mark.parametrize("name", SMOOTH_STEPS)
def test_surrogates_integrate_to_one(name):
    # Each standard surrogate is the derivative of a smooth step from 0 to 1.
    xs = np.linspace(-50, 50, 400001, dtype=np.float32)
    d = np.asarray(surrogates.get(name).derivative(jnp.asarray(xs)), np.float64)
    # atan's tails are heavy: its step arctan(pi/2*a*x)/pi + 1/2 gains only 0.99595 on [-50, 50].
    expected = 2 / np.pi * np.arctan(np.pi / 2 * 2.0 * 50) if name == "atan" else 1.0
    assert abs(np.trapezoid(d, xs) - expected) < 5e-4  # one grid step at the rectangle's jumps


def test_works_under_jit_vmap_scan_checkpoint():
    sg = surrogates.atan(2.0)
    x = jnp.asarray(X)
    expected = _analytic("atan", 2.0, X)

    def summed_scan(x):
        def body(c, xi):
            return c + sg(xi), None

        return jax.lax.scan(body, 0.0, x)[0]

    np.testing.assert_allclose(jax.jit(jax.grad(summed_scan))(x), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda x: jax.checkpoint(lambda y: sg(y).sum())(x))(x), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(lambda v: sg(v).sum()))(x[None].repeat(3, 0))[2], expected, rtol=1e-6)


def test_bfloat16_keeps_dtype():
    sg = surrogates.rectangular()
    x = jnp.asarray(X, jnp.bfloat16)
    assert sg(x).dtype == jnp.bfloat16
    assert jax.grad(lambda v: sg(v).astype(jnp.float32).sum())(x).dtype == jnp.bfloat16


def test_bad_surrogates_are_rejected_with_names():
    with pytest.raises(ValueError, match="choose one of"):
        surrogates.get("gaussian")
    with pytest.raises(ValueError, match="positive"):
        surrogates.rectangular(0.0)


def test_stdb_gradient_follows_time_since_last_spike():
    dt = jnp.array([0.0, 1.0, 10.0, 100.0])
    x = jnp.array([0.3, -0.2, 0.1, -1.0])
    stdb = surrogates.get("stdb")  # a Surrogate like the others: alpha 0.3, beta 0.01
    assert stdb == surrogates.stdb(0.3, 0.01) and stdb.timing_dependent
    g = jax.grad(lambda x: stdb(x, dt).sum())(x)
    np.testing.assert_allclose(g, 0.3 * np.exp(-0.01 * np.array([0.0, 1.0, 10.0, 100.0])), rtol=1e-6)
    np.testing.assert_array_equal(stdb(x, dt), [1, 0, 1, 0])
    with pytest.raises(ValueError, match="since_spike"):
        stdb(x)


def test_linear_surrogate_is_the_hybrid_reference_formula():
    x = jnp.array([-1.5, -0.5, 0.0, 0.25, 2.0])
    g = jax.grad(lambda x: surrogates.get("linear")(x).sum())(x)
    np.testing.assert_allclose(g, 0.3 * np.maximum(0.0, 1.0 - np.abs(np.asarray(x))), rtol=1e-6)


def test_one_name_table_for_configs_and_surrogates():
    assert surrogates.NAMES == {"rectangular", "sigmoid", "atan", "triangle", "linear", "stdb"}
    for name in surrogates.NAMES:
        assert surrogates.get(name).name == name
    assert surrogates.get("sigmoid") == surrogates.sigmoid() and surrogates.get("atan", 3.0) == surrogates.atan(3.0)
    with pytest.raises(ValueError, match="choose one of"):
        surrogates.get("erf")
