"""Shared fixtures of the SNN2ANN tests: a tiny two-branch net with non-trivial BN statistics."""

import jax
import pytest

from snnjax import models
from snnjax.methods import snn2ann
from snnjax.train import steps

T = 4
TINY = dict(layers="1,M,2", width=2, time_steps=T, dropout=(0.0,))


@pytest.fixture(scope="module")
def tiny():
    # No membrane dropout here: these tests compare the SNN branch in training with evaluation
    # (the official membrane dropout is tested in tests/methods/snn2ann/test_official_recursions.py).
    model = models.build(snn2ann.model_config(mapping_unit="stsu", membrane_dropout=0.0, **TINY), 3)
    x = jax.random.normal(jax.random.key(1), (5, 4, 4, 1))
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
    variables = {k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}
    # Non-trivial BN running statistics so that the folding matters.
    key = iter(jax.random.split(jax.random.key(9), 8))
    variables["batch_stats"] = jax.tree.map(
        lambda s: jax.random.uniform(next(key), s.shape, minval=0.2, maxval=1.5), variables["batch_stats"]
    )
    branches = jax.jit(
        lambda v, x, train: model.apply(
            v,
            x,
            train=train,
            method="branches",
            mutable=["batch_stats", "thresholds"],
            rngs={"dropout": jax.random.key(0)},
        ),
        static_argnums=2,
    )
    return model, variables, x, branches
