"""snnjax.train.setup: one plan of steps, schedule, optimizer and abstract state for fresh starts and restores."""

import jax
import numpy as np
import pytest

from snnjax import data, models
from snnjax.train import mesh as mesh_lib
from snnjax.train import setup


@pytest.fixture(scope="module")
def mesh():
    return mesh_lib.make_mesh()


def test_plan_counts_steps_and_follows_the_schedule(tiny_baseline, mesh):
    config = tiny_baseline
    config.train.epochs = 3
    splits = data.load_from_config(config.data)
    plan = setup.plan(config, splits, models.build(config.model, splits.num_classes), mesh)
    spe = splits.train.num_examples // 128  # full batches only: 1,437 // 128 = 11
    assert (plan.batch_size, plan.steps_per_epoch, plan.total_steps) == (128, spe, 3 * spe) == (128, 11, 33)
    # digits preset: lr 0.05, x0.1 at epochs 10 and 15 (beyond these 3 epochs: constant).
    assert float(plan.schedule(0)) == pytest.approx(0.05) and float(plan.schedule(32)) == pytest.approx(0.05)


def test_abstract_state_is_the_structure_of_the_fresh_state(tiny_baseline, mesh):
    config = tiny_baseline
    splits = data.load_from_config(config.data)
    model = models.build(config.model, splits.num_classes)
    plan = setup.plan(config, splits, model, mesh)
    variables = setup.init_variables(model, splits.image_shape, int(config.seed), mesh)
    state = setup.initial_state(plan, variables, int(config.seed), mesh)
    assert jax.tree.structure(plan.abstract_state) == jax.tree.structure(state)
    for a, s in zip(jax.tree.leaves(plan.abstract_state), jax.tree.leaves(state)):
        assert (a.shape, a.dtype) == (s.shape, s.dtype) and a.sharding.is_equivalent_to(s.sharding, s.ndim)
    assert int(state.step) == 0
    # The step-0 params are the init's, replicated on every device.
    for v, p in zip(jax.tree.leaves(variables["params"]), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(v), np.asarray(p))
        assert len(p.sharding.device_set) == 8


def test_plan_refuses_a_batch_that_does_not_split_over_the_mesh(tiny_baseline, mesh):
    config = tiny_baseline
    config.data.batch_size = 12
    splits = data.load_from_config(config.data)
    with pytest.raises(ValueError, match="data.batch_size=12 must be a positive multiple of the device count 8"):
        setup.plan(config, splits, models.build(config.model, splits.num_classes), mesh)
