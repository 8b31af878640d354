"""SNN2ANN spiking mapping units (STSU, ReSU): forward values and straight-through gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.methods import snn2ann

# ---------------------------------------------------------------------------------------------
# Spiking mapping units
# ---------------------------------------------------------------------------------------------

RELU = jnp.array([0.0, 0.3, 1.2, 0.0, 2.5])
COUNT = jnp.array([2.0, 0.0, 3.0, 0.0, 1.0])


def test_stsu_forwards_the_spike_count_and_resu_gates_it_by_the_relu():
    np.testing.assert_array_equal(snn2ann.stsu(RELU, COUNT), [2.0, 0.0, 3.0, 0.0, 1.0])
    np.testing.assert_array_equal(snn2ann.resu(RELU, COUNT), [0.0, 0.0, 3.0, 0.0, 1.0])


@pytest.mark.parametrize("unit", [snn2ann.stsu, snn2ann.resu])
def test_mapping_units_are_straight_through_to_the_relu_output(unit):
    w = jnp.array([1.0, -2.0, 3.0, 0.5, 4.0])
    g_relu, g_count = jax.grad(lambda r, c: jnp.sum(w * unit(r, c)), argnums=(0, 1))(RELU, COUNT)
    np.testing.assert_array_equal(g_relu, w)  # identity, also where the forward value is 0
    np.testing.assert_array_equal(g_count, np.zeros(5))  # nothing flows into the SNN
    # Through the ReLU: d/dx = w * 1[x > 0].
    x = jnp.array([-1.0, 0.3, 1.2, -0.2, 2.5])
    g_x = jax.grad(lambda x: jnp.sum(w * unit(nn.relu(x), COUNT)))(x)
    np.testing.assert_array_equal(g_x, [0.0, -2.0, 3.0, 0.0, 4.0])


def test_mapping_unit_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        snn2ann.stsu(RELU, COUNT[:4])
