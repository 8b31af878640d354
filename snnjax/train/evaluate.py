"""The one evaluation loop: per-batch metric sums over a test split, divided by the example count.

Every evaluation in snnjax goes through :func:`accumulate`: the training loop's per-epoch test
(:class:`Evaluator`, compiled once, sharded over the mesh), a model's accuracy right after a weight
transfer (:func:`evaluate`), the SNN2ANN two-branch test and the converted SNN's accuracy-per-T
sweep (their own per-batch functions). A padded last batch counts each example once: per-batch
functions return *sums* over the real examples plus their ``count``.

The test batches come from :class:`snnjax.train.inputs.EvalInputs`, resident or streamed alike: one
:class:`Evaluator` serves both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from snnjax.train import inputs as inputs_lib
from snnjax.train import mesh as mesh_lib
from snnjax.train import steps
from snnjax.train.eval_sums import Sums, accumulate  # noqa: F401  (Sums: re-exported with accumulate)


def make_eval_fn(eval_step: Callable, inputs: inputs_lib.EvalInputs) -> Callable:
    """``fn(variables, *args, batch_index) -> sums``: the batch of ``inputs.batch_fn``, then ``eval_step``.

    ``eval_step(variables, x, y, mask, key) -> sums`` (e.g. :func:`snnjax.train.steps.make_eval_step`).
    """

    def fn(variables: Any, *args: jax.Array) -> steps.Metrics:
        x, y, mask = inputs.batch_fn(*args)
        # A fixed key per batch: stochastic encodings give the same test accuracy every time.
        return eval_step(variables, x, y, mask, jax.random.fold_in(jax.random.key(0), args[-1]))

    return fn


@dataclasses.dataclass
class Evaluator:
    """A jitted ``eval_fn(variables, *args, batch_index) -> sums`` over the batches of ``inputs``.

    ``evaluator(variables)`` returns the mean of every metric (``correct`` -> accuracy,
    ``loss_sum`` -> mean loss for the default eval step).
    """

    eval_fn: Callable
    inputs: inputs_lib.EvalInputs

    @property
    def num_batches(self) -> int:
        return self.inputs.num_batches

    def compile(self, variables: Any) -> None:
        """Compile now (ahead of the first call), e.g. to time compilation separately."""
        self.eval_fn = self.eval_fn.lower(variables, *self.inputs.arg_shapes, jnp.int32(0)).compile()

    def __call__(self, variables: Any, *, on_batch: Callable[[], Any] | None = None) -> dict[str, float]:
        batches = self.inputs.batches()  # accumulate asks for batch 0, 1, ... in order
        return accumulate(
            lambda i: self.eval_fn(variables, *next(batches), jnp.int32(i)), self.num_batches, on_batch=on_batch
        )


def make_evaluator(eval_step: Callable, inputs: inputs_lib.EvalInputs, *, out_shardings: Any = None) -> Evaluator:
    """An :class:`Evaluator` of ``eval_step(variables, x, y, mask, key) -> sums`` (e.g.
    :func:`snnjax.train.steps.make_eval_step`) over the test batches of ``inputs``."""
    fn = make_eval_fn(eval_step, inputs)
    jitted = jax.jit(fn) if out_shardings is None else jax.jit(fn, out_shardings=out_shardings)
    return Evaluator(jitted, inputs)


def evaluate(
    model: nn.Module,
    variables: Any,
    splits,
    *,
    batch_size: int,
    mesh: Mesh,
    eval_step: Callable | None = None,
) -> dict[str, float]:
    """Test metrics of ``variables`` as they are (no training), as :func:`snnjax.train.inputs.create_eval_inputs`
    places them: in memory on this process's default device; a streamed test split over ``mesh`` (the run's).

    ``eval_step`` defaults to :func:`snnjax.train.steps.make_eval_step` (``correct``, ``loss_sum``).
    """
    inputs = inputs_lib.create_eval_inputs(splits, batch_size=batch_size, mesh=mesh)
    evaluator = make_evaluator(eval_step or steps.make_eval_step(model), inputs)
    if inputs.mesh is not None:  # batches sharded over it: the variables replicated on it
        variables = jax.device_put(variables, mesh_lib.replicated(inputs.mesh))
    return evaluator(variables)
