"""SNN2ANN adaptive threshold adjustment: noisy-spike ratio, threshold update, config checks."""

import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.methods import snn2ann

# ---------------------------------------------------------------------------------------------
# ATA
# ---------------------------------------------------------------------------------------------


def test_noisy_spike_ratio_and_ata_raise_only_above_tolerance():
    relu = jnp.array([0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.5, 0.0, 0.0, 3.0])
    two_noisy = jnp.array([1.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0])  # entries 0, 1: 2/10 noisy
    one_noisy = jnp.array([0.0, 3.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0])  # entry 1: 1/10
    assert float(snn2ann.noisy_spike_ratio(relu, two_noisy)) == pytest.approx(0.2)
    assert float(snn2ann.noisy_spike_ratio(relu, one_noisy)) == pytest.approx(0.1)
    vth = jnp.array([0.2, 0.7])
    # r = 0.2 > 0.1: Vth <- 0.9 Vth + 0.1 (Vth + 0.1) = Vth + 0.01
    np.testing.assert_allclose(snn2ann.ata_update(vth, jnp.float32(0.2)), [0.21, 0.71], rtol=1e-6)
    # r = 0.1 is not > 0.1: unchanged
    np.testing.assert_array_equal(snn2ann.ata_update(vth, jnp.float32(0.1)), vth)
    custom = snn2ann.AtaConfig(tolerance=0.05, step=1.0, momentum=0.5)
    np.testing.assert_allclose(snn2ann.ata_update(vth, jnp.float32(0.1), custom), [0.7, 1.2], rtol=1e-6)


def test_ata_config_rejects_lowering_thresholds():
    with pytest.raises(ValueError, match="ata_step"):
        snn2ann.AtaConfig(step=-0.1)
