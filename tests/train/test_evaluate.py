"""snnjax.train.evaluate: accuracy and loss over a test split with a padded last batch, against NumPy."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.data.types import ArrayDataset, DatasetSplits
from snnjax.train import evaluate
from snnjax.train import mesh as mesh_lib


class Linear(nn.Module):
    @nn.compact
    def __call__(self, x, *, train=False):
        del train
        return nn.Dense(3, name="head")(x.reshape(x.shape[0], -1))


def _splits(n_test=10):
    rng = np.random.default_rng(0)
    train = ArrayDataset(rng.integers(0, 256, (4, 2, 2, 1), dtype=np.uint8), np.zeros(4, np.int32), 3)
    test = ArrayDataset(
        rng.integers(0, 256, (n_test, 2, 2, 1), dtype=np.uint8), rng.integers(0, 3, n_test).astype(np.int32), 3
    )
    return DatasetSplits(name="tiny", train=train, test=test, mean=(0.5,), std=(0.25,))


@pytest.mark.parametrize("batch_size", [4, 10, 64])  # 10 = 4 + 4 + 2 (padded), one batch, one oversize batch
def test_accuracy_and_loss_match_numpy_whatever_the_batching(batch_size):
    splits = _splits()
    model = Linear()
    variables = model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))
    got = evaluate.evaluate(model, variables, splits, batch_size=batch_size, mesh=mesh_lib.make_mesh())

    x = (splits.test.images.astype(np.float64) / 255 - 0.5) / 0.25
    w = np.asarray(variables["params"]["head"]["kernel"], np.float64)
    b = np.asarray(variables["params"]["head"]["bias"], np.float64)
    logits = x.reshape(10, -1) @ w + b
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    labels = splits.test.labels
    assert got["correct"] == pytest.approx(np.mean(logits.argmax(axis=1) == labels))
    assert got["loss_sum"] == pytest.approx(-np.mean(log_p[np.arange(10), labels]), rel=1e-5)


def test_accumulate_divides_sums_by_the_total_count():
    sums = [{"correct": 3.0, "count": 4.0}, {"correct": 1.0, "count": 2.0}]
    assert evaluate.accumulate(lambda i: sums[i], 2) == {"correct": pytest.approx(4 / 6)}
