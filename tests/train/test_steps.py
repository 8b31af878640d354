"""snnjax.train.steps: the sharded train step, non-finite policy and distillation on a tiny ResNet18."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax import models
from snnjax.train import mesh as mesh_lib
from snnjax.train import steps
from snnjax.train.state import create_train_state


def _tiny_setup(batch=16):
    cfg = models.model_config(name="resnet18", neuron="lif", time_steps=2, width=4)
    model = models.build_model(cfg, 5)
    x = jax.random.normal(jax.random.key(1), (batch, 8, 8, 3))
    y = jnp.arange(batch, dtype=jnp.int32) % 5
    variables = jax.jit(lambda k: model.init(k, x[:1], train=False))(jax.random.key(0))
    variables = {k: v for k, v in variables.items() if k in ("params", "batch_stats")}
    tx = optax.sgd(0.1, momentum=0.9)
    state = create_train_state(variables, tx, jax.random.key(3))
    return model, tx, state, x, y


def test_sharded_step_equals_single_device_step():
    assert len(jax.devices()) == 8, "tests/conftest.py should give 8 fake CPU devices"
    model, tx, state, x, y = _tiny_setup()
    step = steps.make_train_step(model, tx)

    one = mesh_lib.make_mesh(jax.devices()[:1])
    s1, m1 = jax.jit(step, out_shardings=mesh_lib.replicated(one))(
        jax.device_put(state, mesh_lib.replicated(one)), jax.device_put((x, y), mesh_lib.batch_sharded(one)), None
    )

    eight = mesh_lib.make_mesh()
    batch8 = jax.device_put((x, y), mesh_lib.batch_sharded(eight))
    assert len(batch8[0].sharding.device_set) == 8
    s8, m8 = jax.jit(step, out_shardings=mesh_lib.replicated(eight))(
        jax.device_put(state, mesh_lib.replicated(eight)), batch8, None
    )

    np.testing.assert_allclose(m1["loss"], m8["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s8.params)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    for a, b in zip(jax.tree.leaves(s1.model_state), jax.tree.leaves(s8.model_state)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)  # BN statistics are global
    assert int(s8.step) == 1


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_nonfinite_steps_are_flagged_and_optionally_skipped(policy):
    model, tx, state, x, y = _tiny_setup()
    step = jax.jit(steps.make_train_step(model, tx, nonfinite=policy))
    bad_x = x.at[0, 0, 0, 0].set(jnp.nan)
    new, metrics = step(state, (bad_x, y), None)
    assert float(metrics["finite"]) == 0.0
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)))
    assert same == (policy == "skip")
    assert int(new.step) == 1
    _, ok = step(state, (x, y), None)
    assert float(ok["finite"]) == 1.0


def test_distillation_step_uses_teacher_logits():
    model, tx, state, x, y = _tiny_setup()
    teacher = models.build_model(models.model_config(name="resnet18", neuron="relu", time_steps=1, width=4), 5)
    tvars = jax.jit(lambda k: teacher.init(k, x[:1], train=False))(jax.random.key(9))
    kd = steps.make_train_step(model, tx, distillation=steps.Distillation(teacher, temperature=4.0, alpha=0.3))
    _, m_kd = jax.jit(kd)(state, (x, y), tvars)
    from snnjax import losses

    # The step's own forward passes, computed apart (one jitted program; eager ResNets are slow on CPU).
    @jax.jit
    def forwards(state, tvars):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), 0)
        logits, _ = steps.apply_train(model, state.params, state.model_state, x, key)
        return logits, teacher.apply(tvars, x, train=False)

    logits, t_logits = forwards(state, tvars)
    expected = losses.cross_entropy(logits, y) + 0.3 * 16.0 * losses.kd_kl(logits, t_logits, temperature=4.0)
    np.testing.assert_allclose(float(m_kd["loss"]), float(expected), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(m_kd["accuracy"]), float(losses.accuracy(logits, y)))
