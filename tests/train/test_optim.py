"""snnjax.train.optim: the optimizer against PyTorch's update rule, schedules at epoch boundaries."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax import config as config_lib
from snnjax.train import optim


def test_sgd_matches_pytorch_update_rule():
    # PyTorch SGD: d = g + wd*p; buf = m*buf + d (buf = d at the first step); p -= lr*buf.
    cfg = config_lib.optim_config(lr=0.1, momentum=0.9, weight_decay=0.01, schedule="constant")
    tx = optim.make_optimizer(cfg, optim.learning_rate_schedule(cfg, 10, 1))
    p = jnp.array([1.0, -2.0])
    grads = [jnp.array([0.5, 0.25]), jnp.array([-1.0, 2.0])]
    state = tx.init(p)
    ref_p, buf = np.array([1.0, -2.0]), np.zeros(2)
    for g in grads:
        d = np.asarray(g) + 0.01 * ref_p
        buf = 0.9 * buf + d
        ref_p = ref_p - 0.1 * buf
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
    np.testing.assert_allclose(p, ref_p, rtol=1e-6)


@pytest.mark.parametrize(
    "schedule,expected",
    [
        ("multistep", [0.05, 0.05, 0.005, 0.005, 0.0005]),  # milestones (2, 4) epochs
        ("step", [0.05, 0.005, 0.005, 0.0005, 0.0005]),  # every 1 epoch... see step_epochs below
    ],
)
def test_schedules_change_at_epoch_boundaries(schedule, expected):
    cfg = config_lib.optim_config(lr=0.05, schedule=schedule, milestones=(2, 4), gamma=0.1, step_epochs=2)
    sched = optim.learning_rate_schedule(cfg, steps_per_epoch=10, epochs=5)
    got = [float(sched(e * 10)) for e in range(5)]
    if schedule == "step":  # x0.1 every 2 epochs: epochs 0-1, 2-3, 4
        expected = [0.05, 0.05, 0.005, 0.005, 0.0005]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert float(sched(19)) == pytest.approx(0.05)  # last step of epoch 1 still at the first rate
