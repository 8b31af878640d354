"""The streamed backend of `snnjax.train.inputs` against the resident (in-memory) one it must equal.

`digits` (offline, 8x8 grayscale) is exported to records; a tiny conv net trains and evaluates on the
same batches from records and from device-resident arrays, over the 8 fake CPU devices of conftest.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from snnjax import config as config_lib
from snnjax.data import from_records, load_dataset
from snnjax.data.batches import batch_indices
from snnjax.data.errors import InvalidDatasetOptionError
from snnjax.train import evaluate as evaluate_lib
from snnjax.train import inputs as inputs_lib
from snnjax.train import mesh as mesh_lib
from snnjax.train import steps
from snnjax.train.state import create_train_state


class TinyNet(nn.Module):
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


@pytest.fixture(scope="module")
def digits_records(tmp_path_factory):
    data_cfg = config_lib.data_config(name="digits", batch_size=64)
    data_cfg.streaming = True
    data_cfg.records_dir = str(tmp_path_factory.mktemp("records") / "digits")
    return data_cfg, from_records.load(data_cfg), load_dataset("digits")


def test_exported_records_carry_the_in_memory_dataset(digits_records):
    data_cfg, records, splits = digits_records
    assert from_records.enabled(data_cfg) and from_records.is_streamed(records)
    assert records.image_shape == splits.image_shape == (8, 8, 1)
    assert records.num_classes == 10 and records.train.num_examples == splits.train.num_examples == 1437
    assert records.mean == splits.mean and records.std == splits.std  # exact: stored at export
    np.testing.assert_array_equal(records.test.images, splits.test.images[:256])
    np.testing.assert_array_equal(records.test.labels, splits.test.labels[:256])


def _state(model, image_shape, tx):
    variables = model.init(jax.random.key(0), jnp.zeros((1, *image_shape)))
    return create_train_state(variables, tx, jax.random.key(1))


def test_streamed_steps_equal_in_memory_steps_on_the_mesh(digits_records):
    data_cfg, records, splits = digits_records
    mesh = mesh_lib.make_mesh()
    model, tx = TinyNet(), optax.sgd(0.1, momentum=0.9)
    train_step = steps.make_train_step(model, tx)
    data = inputs_lib.DeviceData(64, records.mean, records.std, padding=1, flip=True, seed=4)
    repl = mesh_lib.replicated(mesh)
    in_memory = inputs_lib.resident_train_inputs(splits.train, data, mesh)
    source = records.stream(batch_size=64, eval_batch_size=64, seed=4, process_index=0, process_count=1)
    stream = inputs_lib.streamed_train_inputs(source, data, mesh, 20)  # mid epoch 0 (22 steps per epoch) on
    resident = jax.jit(steps.with_inputs(train_step, in_memory.batch_fn), out_shardings=(repl, repl))
    streaming = jax.jit(steps.with_inputs(train_step, stream.batch_fn), out_shardings=(repl, repl))
    state_a = state_b = jax.device_put(_state(model, (8, 8, 1), tx), repl)
    state_a = state_a.replace(step=jnp.int32(20))
    state_b = state_b.replace(step=jnp.int32(20))
    for step in range(20, 25):
        x, y = next(stream.batches)
        idx = np.asarray(batch_indices(jax.random.key(4), step, 1437, 64))
        np.testing.assert_array_equal(np.asarray(x), splits.train.images[idx])  # the in-memory batch
        state_a, metrics_a = resident(state_a, *next(in_memory.batches))
        state_b, metrics_b = streaming(state_b, x, y)
        assert float(metrics_a["loss"]) == pytest.approx(float(metrics_b["loss"]), rel=1e-6)
    for a, b in zip(jax.tree.leaves(state_a.params), jax.tree.leaves(state_b.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    stream.close()


def test_streamed_evaluation_equals_in_memory_evaluation(digits_records):
    _, records, splits = digits_records
    mesh = mesh_lib.make_mesh()
    model = TinyNet()
    variables = model.init(jax.random.key(3), jnp.zeros((1, 8, 8, 1)))
    eval_step = steps.make_eval_step(model)
    source = records.stream(batch_size=64, eval_batch_size=48, seed=0, process_index=0, process_count=1)
    stream = inputs_lib.streamed_eval_inputs(source, mean=records.mean, std=records.std, mesh=mesh)
    evaluator = evaluate_lib.make_evaluator(eval_step, stream)
    evaluator.compile(variables)
    streamed_means = evaluator(variables)  # 360 = 7 x 48 + 24 (+ 24 masked)
    resident_inputs = inputs_lib.resident_eval_inputs(
        splits.test, batch_size=48, mean=splits.mean, std=splits.std, mesh=mesh
    )
    in_memory = evaluate_lib.make_evaluator(eval_step, resident_inputs)(variables)
    assert streamed_means["correct"] == pytest.approx(in_memory["correct"], abs=1e-7)
    assert streamed_means["loss_sum"] == pytest.approx(in_memory["loss_sum"], rel=1e-5)
    # By hand: accuracy over the 360 test images.
    logits = model.apply(variables, (splits.test.images / 255.0 - splits.mean[0]) / splits.std[0])
    assert streamed_means["correct"] == pytest.approx(float(np.mean(np.argmax(logits, -1) == splits.test.labels)))


def test_which_configs_stream(tmp_path):
    cfg = config_lib.data_config(name="records:/some/dir")
    assert from_records.enabled(cfg) and from_records.records_location(cfg) == ("/some/dir", None)
    cfg.streaming = False
    with pytest.raises(InvalidDatasetOptionError, match="always streamed"):
        from_records.enabled(cfg)
    plain = config_lib.data_config(name="fashion_mnist")
    assert not from_records.enabled(plain)
    plain.streaming = True
    assert from_records.enabled(plain)
    assert from_records.records_location(plain)[0].endswith("records/fashion_mnist")
    with_options = config_lib.data_config(name="digits", options=ml_collections.ConfigDict({"size": 16}))
    with_options.streaming, with_options.records_dir = True, str(tmp_path / "d16")
    with pytest.raises(InvalidDatasetOptionError, match="cannot export 'digits' with options"):
        from_records.load(with_options)
