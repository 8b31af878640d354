"""Training and evaluation from records streamed off disk (``config.data.streaming``): the device side.

:func:`snnjax.data.from_records.load` gives a :class:`snnjax.data.stream_source.RecordSet` instead of
in-memory splits when ``config.data`` streams, and :func:`start` gives the run
(``snnjax.train.loop.Run``):

- ``run.batches``: an iterator of global training batches from the run's current step on, each
  this process's slice (``StreamSource.train_batches``) assembled into one batch-sharded array
  (``jax.make_array_from_process_local_data``), with ``PREFETCH`` batches already on the devices;
- ``run.step_fn``: the compiled step ``(state, images uint8 [B, H, W, C], labels int32 [B],
  teacher_variables)``: the same random crop/flip and normalisation on the device as
  :func:`snnjax.data.pipeline.make_train_batch` (same key), then the train step;
- ``run.evaluator``: :class:`StreamEvaluator`, the test split streamed in padded, masked batches.

Datasets decoded as stored (``data.image_size=0``) therefore train on exactly the batches of the
in-memory loop (:mod:`snnjax.data.stream_source` uses its example order); with
``data.image_size=S`` the host makes random-resized S x S crops and flips (ImageNet) and the device
only normalises.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.data import pipeline as data_pipeline
from snnjax.data.stream_source import RecordSet, StreamSource
from snnjax.train import mesh as mesh_lib
from snnjax.train import steps
from snnjax.train.eval_sums import accumulate
from snnjax.train.state import TrainState, step_key

PREFETCH = 2  # global batches transferred to the devices ahead of the step that uses them


def global_array(local: np.ndarray, mesh) -> jax.Array:
    """One batch-sharded global array from this process's slice ``[B / process_count, ...]``."""
    return jax.make_array_from_process_local_data(mesh_lib.batch_sharded(mesh), local)


def device_batches(source: StreamSource, start_step: int, mesh) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Global (images uint8 [B, H, W, C], labels int32 [B]) of every step from ``start_step`` on."""
    queue: collections.deque = collections.deque()
    for batch in source.train_batches(start_step):
        queue.append((global_array(batch["image"], mesh), global_array(batch["label"], mesh)))
        if len(queue) > PREFETCH:
            yield queue.popleft()


def make_train_step(train_step, data: steps.DeviceData, mesh=None):
    """``step(state, images, labels, teacher_variables)`` on a streamed uint8 batch [B, H, W, C].

    The device part of :func:`snnjax.train.steps.make_device_train_step` without the gather: the
    same augmentation key, crop/flip and normalisation, so equal batches give equal steps.
    """

    def step(state: TrainState, images: jax.Array, labels: jax.Array, teacher_variables: Any = None):
        x = data_pipeline.random_crop_flip(
            step_key(state, steps.AUGMENT_STREAM), images, padding=data.padding, flip=data.flip
        )
        x = data_pipeline.normalize(x, data.mean, data.std)
        if mesh is not None:
            x = jax.lax.with_sharding_constraint(x, mesh_lib.batch_sharded(mesh))
        return train_step(state, (x, labels), teacher_variables)

    return step


@dataclasses.dataclass
class StreamEvaluator:
    """Test metrics over the whole streamed test split: ``evaluator(variables) -> {name: mean}``."""

    eval_fn: Any  # jitted (variables, images, labels, mask, batch_index) -> sums
    source: StreamSource
    mesh: Any

    def _shapes(self) -> tuple[jax.ShapeDtypeStruct, ...]:
        sharding = mesh_lib.batch_sharded(self.mesh)
        batch = self.source.eval_batch_size
        return (
            jax.ShapeDtypeStruct((batch, *self.source.image_shape), jnp.uint8, sharding=sharding),
            jax.ShapeDtypeStruct((batch,), jnp.int32, sharding=sharding),
            jax.ShapeDtypeStruct((batch,), jnp.bool_, sharding=sharding),
        )

    def compile(self, variables: Any) -> None:
        self.eval_fn = self.eval_fn.lower(variables, *self._shapes(), jnp.int32(0)).compile()

    @property
    def num_batches(self) -> int:
        """Test batches per pass (the in-memory :class:`~snnjax.train.evaluate.Evaluator`'s field)."""
        return self.source.num_eval_batches

    def __call__(self, variables: Any, *, on_batch: Callable[[], Any] | None = None) -> dict[str, float]:
        batches = self.source.eval_batches()

        def batch_sums(i: int):
            batch, mask = next(batches)
            arrays = (batch["image"], batch["label"], mask)
            return self.eval_fn(variables, *(global_array(a, self.mesh) for a in arrays), jnp.int32(i))

        return accumulate(batch_sums, self.num_batches, on_batch=on_batch)


def make_evaluator(eval_step, source: StreamSource, *, mean, std, mesh, out_shardings=None) -> StreamEvaluator:
    """A :class:`StreamEvaluator` of ``eval_step(variables, x, y, mask, key) -> sums`` (as the in-memory one)."""

    def fn(variables, images, labels, mask, batch_index):
        x = data_pipeline.normalize(images, tuple(mean), tuple(std))
        x = jax.lax.with_sharding_constraint(x, mesh_lib.batch_sharded(mesh))
        # The in-memory evaluator's per-batch key: stochastic encodings score the same either way.
        return eval_step(variables, x, labels, mask, jax.random.fold_in(jax.random.key(0), batch_index))

    jitted = jax.jit(fn) if out_shardings is None else jax.jit(fn, out_shardings=out_shardings)
    return StreamEvaluator(jitted, source, mesh)


def evaluate(
    model, variables: Any, records: RecordSet, *, batch_size: int, eval_step=None, mesh=None
) -> dict[str, float]:
    """Test metrics of ``variables`` over the whole streamed test split (``snnjax.train.evaluate.evaluate``),
    batches sharded over ``mesh`` (the run's; default: every device)."""
    mesh = mesh if mesh is not None else mesh_lib.make_mesh()
    n_dev = int(mesh.devices.size)
    eval_bs = max(n_dev, int(batch_size) // n_dev * n_dev)
    source = records.stream(batch_size=jax.process_count(), eval_batch_size=eval_bs, seed=0)
    evaluator = make_evaluator(
        eval_step or steps.make_eval_step(model), source, mean=records.mean, std=records.std, mesh=mesh
    )
    return evaluator(jax.device_put(variables, mesh_lib.replicated(mesh)))


def start(run, device_data: steps.DeviceData, eval_batch_size: int) -> None:
    """Set ``run.batches``, ``run.step_fn`` (compiled) and ``run.evaluator`` for a streamed run."""
    records: RecordSet = run.splits
    if records.train_transform.kind != "decode":
        # Crops and flips were made on the host; the device only normalises.
        device_data = dataclasses.replace(device_data, padding=0, flip=False)
    source = records.stream(batch_size=run.batch_size, eval_batch_size=eval_batch_size, seed=int(run.config.seed))
    repl = mesh_lib.replicated(run.mesh)
    step_fn = jax.jit(
        make_train_step(run.train_step, device_data, run.mesh), out_shardings=(repl, repl), donate_argnums=0
    )
    sharding = mesh_lib.batch_sharded(run.mesh)
    images = jax.ShapeDtypeStruct((run.batch_size, *records.image_shape), jnp.uint8, sharding=sharding)
    labels = jax.ShapeDtypeStruct((run.batch_size,), jnp.int32, sharding=sharding)
    run.step_fn = step_fn.lower(run.state, images, labels, run.teacher_variables).compile()
    run.evaluator = make_evaluator(
        steps.make_eval_step(run.model),
        source,
        mean=records.mean,
        std=records.std,
        mesh=run.mesh,
        out_shardings=repl,
    )
    run.evaluator.compile(run.state.variables)
    run.batches = device_batches(source, run.start_step, run.mesh)
