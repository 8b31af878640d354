"""snnjax.train.checkpoint: latest + best kept, restore errors name the path."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.train import checkpoint as ckpt_lib


def _small_state():
    return {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.int32(7)}


def test_checkpointer_keeps_latest_and_best(tmp_path):
    ck = ckpt_lib.Checkpointer(tmp_path / "ck", keep=2, async_save=False)
    accs = {1: 0.5, 2: 0.9, 3: 0.6, 4: 0.7, 5: 0.65}
    for step, acc in accs.items():
        ck.save(step, _small_state(), meta={"epoch": step}, config={"a": 1}, metrics={"test_accuracy": acc})
    ck.wait()
    assert ck.all_steps() == [2, 4, 5]  # best (0.9 at step 2) + the latest two
    state, meta = ck.restore(5, ckpt_lib.abstract_like(_small_state()))
    np.testing.assert_array_equal(state["w"], _small_state()["w"])
    assert meta == {"epoch": 5}
    assert ck.read_config(5) == {"a": 1}
    ck.close()


def test_restoring_a_foreign_or_corrupt_checkpoint_names_the_path(tmp_path):
    ck = ckpt_lib.Checkpointer(tmp_path / "ck", keep=2, async_save=False)
    ck.save(1, _small_state(), meta={}, config={})
    ck.wait()
    other = {"w": jnp.zeros((4, 3)), "step": jnp.int32(0)}
    with pytest.raises(ckpt_lib.CheckpointError, match=str(tmp_path / "ck" / "1")):
        ck.restore(1, ckpt_lib.abstract_like(other))
    # Truncate every data file of the state item: a torn copy of a checkpoint.
    for root, _, files in os.walk(tmp_path / "ck" / "1" / "state"):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(3)
    with pytest.raises(ckpt_lib.CheckpointError, match="corrupt"):
        ck.restore(1, ckpt_lib.abstract_like(_small_state()))
    ck.close()
