"""snnjax.train.inputs: the one data path, resident and streamed backends of the same digits, against NumPy.

The same split read from device-resident arrays and streamed from records must give the same
training batches (bitwise, the images are stored as they are) and the same test sums; both must
equal the batch built here by hand from the example order and the normalisation. Runs over the 8
fake CPU devices of conftest.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import config as config_lib
from snnjax.data import from_records, load_dataset
from snnjax.data.batches import batch_indices
from snnjax.train import evaluate as evaluate_lib
from snnjax.train import inputs as inputs_lib
from snnjax.train import mesh as mesh_lib
from snnjax.train import steps
from snnjax.train.state import TrainState

BATCH, SEED = 64, 7


class TinyNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        return nn.Dense(10)(x.mean(axis=(1, 2)))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(in-memory splits, the same split as records) of `digits` (8x8x1, 1437 train / 360 test)."""
    data_cfg = config_lib.data_config(name="digits", batch_size=BATCH)
    data_cfg.streaming = True
    data_cfg.records_dir = str(tmp_path_factory.mktemp("records") / "digits")
    records = from_records.load(data_cfg)
    assert from_records.is_streamed(records)
    return load_dataset("digits"), records


def _state(step: int) -> TrainState:
    """A state at global ``step`` (only ``step`` and ``rng`` reach a batch function)."""
    rng = jax.random.key_data(jax.random.key(3))
    return TrainState(step=jnp.int32(step), params={}, model_state={}, opt_state=(), rng=rng)


def _by_hand(splits, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Step ``step``'s batch without augmentation: the example order's slice, normalised in NumPy."""
    idx = np.asarray(batch_indices(jax.random.key(SEED), step, splits.train.num_examples, BATCH))
    x = (splits.train.images[idx].astype(np.float32) / 255.0 - splits.mean[0]) / splits.std[0]
    return x, splits.train.labels[idx]


def test_batch_for_devices_is_the_one_rounding_rule():
    assert [mesh_lib.batch_for_devices(b, 8) for b in (1, 7, 8, 15, 16, 1000)] == [8, 8, 8, 8, 16, 1000]
    assert mesh_lib.batch_for_devices(300, 1) == 300


@pytest.mark.parametrize("augment", [False, True])
def test_resident_and_streamed_backends_give_the_same_train_batches(digits, augment):
    splits, records = digits
    mesh = mesh_lib.make_mesh()
    data = inputs_lib.DeviceData(BATCH, splits.mean, splits.std, padding=2 if augment else 0, flip=augment, seed=SEED)
    start = 21  # the last step of epoch 0 (22 steps per epoch), then into epoch 1
    resident, _ = inputs_lib.create_inputs(splits, data, eval_batch_size=48, mesh=mesh, start_step=start)
    stream, _ = inputs_lib.create_inputs(records, data, eval_batch_size=48, mesh=mesh, start_step=start)
    assert resident.arg_shapes[0].shape == (1437, 8, 8, 1) and stream.arg_shapes[0].shape == (BATCH, 8, 8, 1)
    resident_fn, stream_fn = jax.jit(resident.batch_fn), jax.jit(stream.batch_fn)
    try:
        for step in range(start, start + 3):
            x_a, y_a = resident_fn(_state(step), *next(resident.batches))
            x_b, y_b = stream_fn(_state(step), *next(stream.batches))
            assert x_a.shape == (BATCH, 8, 8, 1) and x_a.sharding.is_equivalent_to(mesh_lib.batch_sharded(mesh), 4)
            np.testing.assert_array_equal(np.asarray(x_a), np.asarray(x_b))
            np.testing.assert_array_equal(np.asarray(y_a), np.asarray(y_b))
            if not augment:
                x, y = _by_hand(splits, step)
                np.testing.assert_allclose(np.asarray(x_a), x, rtol=1e-6, atol=1e-6)
                np.testing.assert_array_equal(np.asarray(y_a), y)
    finally:
        stream.close()
        resident.close()


def test_resident_and_streamed_test_batches_and_sums_agree(digits):
    splits, records = digits
    mesh = mesh_lib.make_mesh()
    data = inputs_lib.DeviceData(BATCH, splits.mean, splits.std, seed=SEED)
    # 50 is rounded to 48 for the 8 devices: 360 = 7 x 48 + 24 (+ 24 masked).
    _, resident = inputs_lib.create_inputs(splits, data, eval_batch_size=50, mesh=mesh, start_step=0)
    _, stream = inputs_lib.create_inputs(records, data, eval_batch_size=50, mesh=mesh, start_step=0)
    assert resident.num_batches == stream.num_batches == 8 and stream.arg_shapes[0].shape == (48, 8, 8, 1)
    resident_fn, stream_fn = jax.jit(resident.batch_fn), jax.jit(stream.batch_fn)
    for i, (a, b) in enumerate(zip(resident.batches(), stream.batches())):
        for u, v in zip(resident_fn(*a, jnp.int32(i)), stream_fn(*b, jnp.int32(i))):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    model = TinyNet()
    variables = model.init(jax.random.key(1), jnp.zeros((1, 8, 8, 1)))
    eval_step = steps.make_eval_step(model)
    means_a = evaluate_lib.make_evaluator(eval_step, resident)(variables)
    means_b = evaluate_lib.make_evaluator(eval_step, stream)(variables)
    assert means_a["correct"] == means_b["correct"]
    assert means_a["loss_sum"] == pytest.approx(means_b["loss_sum"], rel=1e-6)
    # By hand: accuracy over the 360 test images.
    logits = model.apply(variables, (splits.test.images / 255.0 - splits.mean[0]) / splits.std[0])
    assert means_a["correct"] == pytest.approx(float(np.mean(np.argmax(logits, -1) == splits.test.labels)))


def test_quick_evaluation_in_memory_stays_on_one_device_with_its_batch_clamped(digits):
    splits, _ = digits
    inputs = inputs_lib.create_eval_inputs(splits, batch_size=1000, mesh=mesh_lib.make_mesh())
    assert inputs.mesh is None and inputs.num_batches == 1  # min(1000, 360): one batch, unsharded
