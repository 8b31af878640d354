"""The SNN2ANN train step: CE on the ANN branch, ATA per layer, BN statistics; what it refuses."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax import models
from snnjax.methods import snn2ann
from snnjax.train import steps
from snnjax.train.state import create_train_state

T = 4
TINY = dict(layers="1,M,2", width=2, time_steps=T, dropout=(0.0,))


# ---------------------------------------------------------------------------------------------
# The train step
# ---------------------------------------------------------------------------------------------


def test_train_step_trains_the_ann_and_applies_ata_per_layer(tiny):
    model, variables, x, _ = tiny
    y = jnp.array([0, 1, 2, 0, 1])
    tx = optax.adam(1e-2)
    # Layer 0 made noisy: a very negative running mean lifts the SNN's folded current (it fires
    # almost everywhere) while a negative BN offset silences most of the ANN (batch statistics).
    stats = jax.tree.map(lambda a: a, variables["batch_stats"])
    stats["layer0"]["bn_mean"] = jnp.full_like(stats["layer0"]["bn_mean"], -5.0)
    variables = jax.tree.map(lambda a: a, variables)
    variables["params"]["layer0"]["bn_bias"] = jnp.full_like(variables["params"]["layer0"]["bn_bias"], -2.0)
    state = create_train_state({**variables, "batch_stats": stats}, tx, jax.random.key(2))
    step = jax.jit(snn2ann.make_train_step(model, tx))
    stats_fn = jax.jit(
        lambda v, x: model.apply(
            v,
            x,
            train=True,
            method="branches",
            rngs={"dropout": jax.random.key(0)},
            mutable=["batch_stats", "thresholds", "spike_stats"],
        )[1]["spike_stats"]
    )
    losses, raised_any, kept_any = [], False, False
    for _ in range(12):
        ratios = stats_fn(state.variables, x)
        old = state.model_state["thresholds"]
        state, metrics = step(state, (x, y))
        losses.append(float(metrics["loss"]))
        for name in ("layer0_neuron", "layer1_neuron"):
            delta = np.asarray(state.model_state["thresholds"][name]["vth"] - old[name]["vth"])
            raised = np.float32(ratios[name]["noisy_ratio"][0]) > np.float32(0.1)  # as the step compares
            np.testing.assert_allclose(delta, 0.01 if raised else 0.0, atol=1e-6)
            raised_any, kept_any = raised_any or raised, kept_any or not raised
    assert raised_any and kept_any, "the example should exercise both ATA outcomes"
    assert set(metrics) >= {"loss", "accuracy", "snn_accuracy", "noisy_ratio", "threshold_mean", "grad_norm"}
    assert losses[-1] < losses[0]
    assert int(state.step) == 12


def test_train_step_rejects_a_teacher_and_models_without_branches():
    model = models.build(snn2ann.model_config(**TINY), 3)
    with pytest.raises(ValueError, match="kd.enabled"):
        snn2ann.make_train_step(model, optax.sgd(0.1), distillation=steps.Distillation(model, 4.0, 0.3))
    with pytest.raises(TypeError, match="branches"):
        snn2ann.make_train_step(nn.Dense(3), optax.sgd(0.1))
