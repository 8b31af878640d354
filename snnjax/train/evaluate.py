"""The one evaluation loop: per-batch metric sums over a test split, divided by the example count.

Every evaluation in snnjax goes through :func:`accumulate`: the training loop's per-epoch test
(:class:`Evaluator`, compiled once, sharded over the mesh), a model's accuracy right after a weight
transfer (:func:`evaluate`), the SNN2ANN two-branch test and the converted SNN's accuracy-per-T
sweep (their own per-batch functions). A padded last batch counts each example once: per-batch
functions return *sums* over the real examples plus their ``count``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax.data import from_records
from snnjax.data import pipeline as data_pipeline
from snnjax.train import steps, streamed
from snnjax.train.eval_sums import Sums, accumulate  # noqa: F401  (Sums: re-exported with accumulate)


@dataclasses.dataclass
class Evaluator:
    """A jitted ``eval_fn(variables, images, labels, batch_index) -> sums`` over a resident split.

    ``evaluator(variables)`` returns the mean of every metric (``correct`` -> accuracy,
    ``loss_sum`` -> mean loss for the default eval step).
    """

    eval_fn: Callable
    images: jax.Array
    labels: jax.Array
    num_batches: int

    def compile(self, variables: Any) -> None:
        """Compile now (ahead of the first call), e.g. to time compilation separately."""
        self.eval_fn = self.eval_fn.lower(variables, self.images, self.labels, jnp.int32(0)).compile()

    def __call__(self, variables: Any, *, on_batch: Callable[[], Any] | None = None) -> dict[str, float]:
        return accumulate(
            lambda i: self.eval_fn(variables, self.images, self.labels, jnp.int32(i)),
            self.num_batches,
            on_batch=on_batch,
        )


def make_evaluator(
    eval_step: Callable,
    images: jax.Array,
    labels: jax.Array,
    *,
    batch_size: int,
    mean,
    std,
    mesh=None,
    out_shardings=None,
) -> Evaluator:
    """An :class:`Evaluator` of ``eval_step(variables, x, y, mask, key) -> sums`` (e.g.
    :func:`snnjax.train.steps.make_eval_step`) over ``images``/``labels`` already on the devices."""
    fn = steps.make_device_eval_step(eval_step, batch_size=batch_size, mean=tuple(mean), std=tuple(std), mesh=mesh)
    jitted = jax.jit(fn) if out_shardings is None else jax.jit(fn, out_shardings=out_shardings)
    return Evaluator(jitted, images, labels, data_pipeline.num_eval_batches(int(labels.shape[0]), batch_size))


def evaluate(
    model: nn.Module,
    variables: Any,
    splits,
    *,
    batch_size: int,
    eval_step: Callable | None = None,
    mesh: Any = None,
) -> dict[str, float]:
    """Test metrics of ``variables`` as they are (no training): in memory on the default device; a
    streamed test split over ``mesh`` (the run's; default: every device).

    ``eval_step`` defaults to :func:`snnjax.train.steps.make_eval_step` (``correct``, ``loss_sum``).
    """
    if from_records.is_streamed(splits):  # the whole streamed test split, not the in-memory sample
        return streamed.evaluate(model, variables, splits, batch_size=batch_size, eval_step=eval_step, mesh=mesh)
    batch_size = min(int(batch_size), splits.test.num_examples)
    evaluator = make_evaluator(
        eval_step or steps.make_eval_step(model),
        jnp.asarray(splits.test.images),
        jnp.asarray(splits.test.labels),
        batch_size=batch_size,
        mean=splits.mean,
        std=splits.std,
    )
    return evaluator(variables)
