"""snnjax.epoch_clock: the engine feeds the 1-based epoch to scheduled layers (pipe-S's sharpened ReLU,
the masked PSN's lambda ramp) before every forward pass; a model without the collection is untouched."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax import epoch_clock, layers, neurons
from snnjax.interop import export
from snnjax.models import factory
from snnjax.train import steps
from snnjax.train.state import create_train_state

T = 4


class _TinyPSN(nn.Module):
    """Dense -> masked PSN (ramped over ``ramp`` epochs) -> Dense on ``[B, 3]`` inputs, a ramp ``t / T``
    over the time steps (so the steps differ and lambda changes the spikes)."""

    ramp: float = 4.0
    lam: float = 1.0

    @nn.compact
    def __call__(self, x, *, train):
        del train
        b = x.shape[0]
        ramp = jnp.arange(1, T + 1, dtype=x.dtype) / T
        h = nn.Dense(5)((x[:, None, :] * ramp[None, :, None]).reshape(b * T, -1))
        s = layers.ParallelSpikingNeuron(
            variant="masked", order=2, lam=self.lam, lambda_epochs=self.ramp, init_scheme="spikingjelly"
        )(h, T)  # random W: masking its upper part changes the spikes
        return nn.Dense(2)(s.reshape(b, T, -1).mean(axis=1))


def _state(model, x):
    variables = model.init(jax.random.key(0), x, train=False)
    return create_train_state(dict(variables), optax.sgd(0.1), jax.random.key(1))


def test_fed_step_writes_the_one_based_epoch_before_each_forward():
    model, x = _TinyPSN(), jnp.ones((2, 3))
    state = _state(model, x)
    assert float(state.model_state["schedule"]["ParallelSpikingNeuron_0"]["epoch"]) == 0.0  # before any step
    step = jax.jit(epoch_clock.fed(steps.make_train_step(model, optax.sgd(0.1)), steps_per_epoch=2))
    batch = (x, jnp.array([0, 1], jnp.int32))
    seen = []
    for _ in range(5):
        state, metrics = step(state, batch)
        seen.append(epoch_clock.current_epoch(state.variables))
        assert float(metrics["finite"]) == 1.0
    assert seen == [1.0, 1.0, 2.0, 2.0, 3.0]  # steps 0..4 with 2 steps per epoch


def test_a_model_without_the_collection_is_untouched():
    state = {"batch_stats": {"m": jnp.zeros(2)}}
    assert epoch_clock.feed_epoch(state, jnp.float32(7)) is state
    assert epoch_clock.current_epoch({"params": {}, **state}) is None


@pytest.mark.parametrize("epoch,lam", [(1.0, 0.25), (2.0, 0.5), (4.0, 1.0), (9.0, 1.0)])
def test_the_ramped_masked_psn_runs_as_the_fixed_one_at_lambda_e_over_ramp(epoch, lam):
    """A second code path: the ramp at epoch e equals the fixed-lambda PSN at min(1, e / 4), same weights."""
    assert float(neurons.ramped_psn_lambda(epoch, 4.0)) == lam
    x = jax.random.normal(jax.random.key(3), (3, 3))
    ramped = _TinyPSN(ramp=4.0)
    variables = ramped.init(jax.random.key(0), x, train=False)
    params = jax.tree.map(lambda p: p * 3.0, variables["params"])  # big enough to fire and differ between lambdas
    fed = {"params": params, **epoch_clock.feed_epoch({"schedule": variables["schedule"]}, jnp.float32(epoch))}
    fixed = _TinyPSN(ramp=0.0, lam=lam).apply({"params": params}, x, train=False)
    np.testing.assert_array_equal(ramped.apply(fed, x, train=False), fixed)
    other = _TinyPSN(ramp=0.0, lam=0.0).apply({"params": params}, x, train=False)
    assert lam == 0.0 or not np.array_equal(fixed, other)  # lambda matters for these weights


def test_config_refuses_a_ramp_without_the_masked_variant_or_below_zero():
    for bad, match in [
        ({"psn_variant": "full", "psn_lambda_epochs": 3.0}, "psn_variant='full'"),
        ({"psn_variant": "masked", "psn_lambda_epochs": -1.0}, "must be >= 0"),
    ]:
        cfg = factory.model_config(neuron="psn", **bad)
        with pytest.raises(ValueError, match=f"config.model.psn_lambda_epochs=.*{match}"):
            factory.validate_psn(cfg)
    factory.validate_psn(factory.model_config(neuron="psn", psn_variant="masked", psn_lambda_epochs=3.0))


def test_an_export_carries_the_lambda_the_weights_were_trained_with():
    cfg = factory.model_config(neuron="psn", psn_variant="masked", psn_lambda=1.0, psn_lambda_epochs=4.0)
    variables = {"params": {}, "schedule": {"a": {"epoch": jnp.float32(3.0)}, "b": {"epoch": jnp.float32(3.0)}}}
    frozen = export.trained_psn_lambda(cfg, variables)
    assert (frozen.psn_lambda, frozen.psn_lambda_epochs) == (0.75, 0.0)
    assert cfg.psn_lambda_epochs == 4.0  # the run's config is not changed
    fixed = factory.model_config(neuron="psn", psn_variant="masked", psn_lambda=0.3)
    assert export.trained_psn_lambda(fixed, variables) is fixed
