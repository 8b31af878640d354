"""The one data path of the engine: a run's training and test batches, whatever holds the dataset.

A training run reads its data through two small interfaces, built once by :func:`create_inputs`
(as MaxText's ``create_data_iterator(config, mesh)`` hides its backends):

- :class:`TrainInputs`: ``batch_fn(state, images, labels) -> (x, y)``, traced inside the jitted train
  step (:func:`snnjax.train.steps.with_inputs`), the shapes of its two array arguments for ahead-of-time
  lowering, and ``batches``, the arguments of every step from the run's current step on;
- :class:`EvalInputs`: ``batch_fn(*args, batch_index) -> (x, y, mask)``, traced inside the one
  evaluator (:class:`snnjax.train.evaluate.Evaluator`), its argument shapes and the per-batch
  arguments of one pass over the test split.

Two backends fill them, chosen by :func:`snnjax.data.from_records.is_streamed`:

- **resident** (in-memory ``DatasetSplits``): both splits are placed on the devices once, replicated;
  the step's arguments are the whole split every step, and the batch of global step s is gathered,
  cropped, flipped and normalised on the device (:func:`snnjax.data.batches.make_train_batch`), a
  pure function of ``(config.seed, s)`` and the state's key;
- **streamed** (a :class:`~snnjax.data.stream_source.RecordSet`): the host reads each step's global
  batch (uint8, batch-sharded, :func:`snnjax.train.streamed.device_batches`), the device applies the
  same crop/flip (same key) and normalisation. A dataset decoded as stored therefore trains on the
  resident path's batches; with ``data.image_size=S`` the host crops and flips and the device only
  normalises.

Both evaluate in global batches of :func:`snnjax.train.mesh.batch_for_devices` (``data.eval_batch_size``
rounded to the device count), padded and masked at the end of the split.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from snnjax.data import batches as data_batches
from snnjax.data import from_records
from snnjax.data.placement import put_dataset
from snnjax.data.stream_source import RecordSet, StreamSource
from snnjax.data.types import ArrayDataset
from snnjax.train import mesh as mesh_lib
from snnjax.train import streamed
from snnjax.train.state import TrainState, step_key
from snnjax.train.steps import AUGMENT_STREAM, Batch

# (images, labels) of one step: the whole resident split uint8 [N, H, W, C] / int32 [N], or a streamed
# global batch uint8 [B, H, W, C] / int32 [B], batch-sharded.
StepArgs = tuple[jax.Array, jax.Array]
EvalBatch = tuple[jax.Array, jax.Array, jax.Array]  # x float32 [B, H, W, C], y int32 [B], mask bool [B]


@dataclasses.dataclass(frozen=True)
class DeviceData:
    """How the train batches are drawn on the device (both backends)."""

    batch_size: int  # B, global (all devices of all processes)
    mean: tuple[float, ...]  # per channel, on the [0, 1] pixel scale
    std: tuple[float, ...]
    padding: int = 4  # random-crop padding, pixels (0: no crop)
    flip: bool = True  # random horizontal flip
    seed: int = 0  # drives the example order only (augmentation uses the state's key)

    @classmethod
    def from_config(cls, config: Any, splits: Any, batch_size: int) -> DeviceData:
        """A stage's draw: ``config.data``'s crop padding and flip, ``config.seed``, ``splits``' mean/std."""
        return cls(
            int(batch_size),
            tuple(splits.mean),
            tuple(splits.std),
            int(config.data.crop_padding),
            bool(config.data.flip),
            int(config.seed),
        )


@dataclasses.dataclass
class TrainInputs:
    """Where the train step's batch comes from.

    Attributes:
      batch_fn: ``(state, images, labels) -> (x float32 [B, H, W, C] normalised, y int32 [B])``, traced
        inside the step; its randomness comes from the state (same key folding on both backends).
      arg_shapes: ``(images, labels)`` as the compiled step takes them (arrays or ShapeDtypeStructs
        with their shardings), for ``jit(...).lower``.
      batches: the ``(images, labels)`` of every step from the run's start step on (endless for the
        resident split; the streamed one ends with the stage's steps).
      close: stops what feeds ``batches`` (the streamed reader's workers); idempotent.
    """

    batch_fn: Callable[[TrainState, jax.Array, jax.Array], Batch]
    arg_shapes: StepArgs | tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]
    batches: Iterator[StepArgs]
    close: Callable[[], None] = lambda: None


@dataclasses.dataclass
class EvalInputs:
    """Where the test batches come from.

    Attributes:
      batch_fn: ``(*args, batch_index) -> (x float32 [B, H, W, C] normalised and placed, y int32 [B],
        mask bool [B])``, traced inside the eval function; ``mask`` is False on padding.
      arg_shapes: ``args`` as the compiled eval function takes them, for ``jit(...).lower``.
      batches: ``() -> iterator`` of the ``args`` of each batch of one pass over the split.
      num_batches: batches per pass, ceil(N_test / B).
      mesh: the mesh the batches are sharded over; None: one device, unsharded.
    """

    batch_fn: Callable[..., EvalBatch]
    arg_shapes: tuple[Any, ...]
    batches: Callable[[], Iterator[tuple[jax.Array, ...]]]
    num_batches: int
    mesh: Mesh | None


# ---------------------------------------------------------------------------------------------
# Resident backend: in-memory splits placed on the devices once
# ---------------------------------------------------------------------------------------------


def resident_train_inputs(train: ArrayDataset, data: DeviceData, mesh: Mesh) -> TrainInputs:
    """The train split placed replicated on ``mesh``; each device gathers its slice of step s's batch.

    Every process holds the whole (small) split, so the batch of step s does not depend on how many
    processes or devices there are. The example order is ``data.seed``'s (constant over the run).
    """
    images, labels = put_dataset(train, mesh_lib.replicated(mesh))
    data_key = jax.random.key(data.seed)
    sharding = mesh_lib.batch_sharded(mesh)

    def batch_fn(state: TrainState, images: jax.Array, labels: jax.Array) -> Batch:
        x, y = data_batches.make_train_batch(
            step_key(state, AUGMENT_STREAM),
            images,
            labels,
            state.step,
            batch_size=data.batch_size,
            mean=data.mean,
            std=data.std,
            padding=data.padding,
            flip=data.flip,
            data_key=data_key,
        )
        return jax.lax.with_sharding_constraint(x, sharding), jax.lax.with_sharding_constraint(y, sharding)

    return TrainInputs(batch_fn, (images, labels), itertools.repeat((images, labels)))


def resident_eval_inputs(
    test: ArrayDataset,
    *,
    batch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    mesh: Mesh | None,
) -> EvalInputs:
    """The test split on the devices, evaluated in batches of ``batch_size`` gathered on the device.

    ``mesh``: replicate the split over it and shard each batch over its devices (``batch_size`` a
    multiple of the device count); None: the split on this process's default device, unsharded (a
    quick test of variables outside a run, :func:`snnjax.train.evaluate.evaluate`).
    """
    images, labels = put_dataset(test, None if mesh is None else mesh_lib.replicated(mesh))
    mean, std = tuple(mean), tuple(std)

    def batch_fn(images: jax.Array, labels: jax.Array, batch_index: jax.Array) -> EvalBatch:
        x, y, mask = data_batches.make_eval_batch(
            images, labels, batch_index, batch_size=batch_size, mean=mean, std=std
        )
        if mesh is not None:
            x = jax.lax.with_sharding_constraint(x, mesh_lib.batch_sharded(mesh))
        return x, y, mask

    num_batches = data_batches.num_eval_batches(int(labels.shape[0]), batch_size)
    return EvalInputs(batch_fn, (images, labels), lambda: itertools.repeat((images, labels)), num_batches, mesh)


# ---------------------------------------------------------------------------------------------
# Streamed backend: records read off disk batch by batch
# ---------------------------------------------------------------------------------------------


def streamed_train_inputs(source: StreamSource, data: DeviceData, mesh: Mesh, start_step: int) -> TrainInputs:
    """Global uint8 batches of ``source`` from ``start_step`` on; the device part of the resident
    ``batch_fn`` without the gather (same augmentation key, crop/flip and normalisation)."""
    sharding = mesh_lib.batch_sharded(mesh)

    def batch_fn(state: TrainState, images: jax.Array, labels: jax.Array) -> Batch:
        key = step_key(state, AUGMENT_STREAM)
        x = data_batches.random_crop_flip(key, images, padding=data.padding, flip=data.flip)
        x = data_batches.normalize(x, data.mean, data.std)
        return jax.lax.with_sharding_constraint(x, sharding), labels  # labels arrive batch-sharded

    shapes = (
        jax.ShapeDtypeStruct((source.batch_size, *source.image_shape), jnp.uint8, sharding=sharding),
        jax.ShapeDtypeStruct((source.batch_size,), jnp.int32, sharding=sharding),
    )
    batches = streamed.device_batches(source, start_step, mesh)
    return TrainInputs(batch_fn, shapes, batches, batches.close)


def streamed_eval_inputs(
    source: StreamSource, *, mean: Sequence[float], std: Sequence[float], mesh: Mesh
) -> EvalInputs:
    """The test split of ``source`` in padded, masked global batches of ``source.eval_batch_size``."""
    sharding = mesh_lib.batch_sharded(mesh)
    mean, std = tuple(mean), tuple(std)

    def batch_fn(images: jax.Array, labels: jax.Array, mask: jax.Array, batch_index: jax.Array) -> EvalBatch:
        del batch_index  # the batch arrives as an argument; the evaluator keys the model with it
        return jax.lax.with_sharding_constraint(data_batches.normalize(images, mean, std), sharding), labels, mask

    batch = source.eval_batch_size
    shapes = (
        jax.ShapeDtypeStruct((batch, *source.image_shape), jnp.uint8, sharding=sharding),
        jax.ShapeDtypeStruct((batch,), jnp.int32, sharding=sharding),
        jax.ShapeDtypeStruct((batch,), jnp.bool_, sharding=sharding),
    )
    return EvalInputs(batch_fn, shapes, lambda: streamed.eval_batches(source, mesh), source.num_eval_batches, mesh)


# ---------------------------------------------------------------------------------------------
# Choosing the backend
# ---------------------------------------------------------------------------------------------


def create_inputs(
    splits: Any, data: DeviceData, *, eval_batch_size: int, mesh: Mesh, start_step: int
) -> tuple[TrainInputs, EvalInputs]:
    """A run's train and test inputs over ``mesh``, resident or streamed as ``splits`` is.

    Args:
      splits: in-memory ``DatasetSplits`` or a streamed ``RecordSet`` (:func:`snnjax.data.load_from_config`).
      data: the global batch size B, normalisation, crop padding, flip and example-order seed.
      eval_batch_size: the requested test batch; rounded by :func:`snnjax.train.mesh.batch_for_devices`.
      mesh: the run's mesh.
      start_step: the global step training continues from (streamed: the first batch read).
    """
    eval_bs = mesh_lib.batch_for_devices(eval_batch_size, int(mesh.devices.size))
    if not from_records.is_streamed(splits):
        train = resident_train_inputs(splits.train, data, mesh)
        return train, resident_eval_inputs(splits.test, batch_size=eval_bs, mean=splits.mean, std=splits.std, mesh=mesh)
    records: RecordSet = splits
    if records.train_transform.kind != "decode":
        # Crops and flips were made on the host; the device only normalises.
        data = dataclasses.replace(data, padding=0, flip=False)
    # One source for both splits; its readers start only when a first batch is taken.
    source = records.stream(batch_size=data.batch_size, eval_batch_size=eval_bs, seed=data.seed)
    train = streamed_train_inputs(source, data, mesh, start_step)
    return train, streamed_eval_inputs(source, mean=records.mean, std=records.std, mesh=mesh)


def create_eval_inputs(splits: Any, *, batch_size: int, mesh: Mesh) -> EvalInputs:
    """The test inputs of a quick evaluation outside a run (:func:`snnjax.train.evaluate.evaluate`).

    Streamed: the whole test split over ``mesh``, in batches rounded to its device count. In memory:
    the test split on this process's default device in batches of ``min(batch_size, N_test)`` (the
    same rounding rule, for one device), unsharded.
    """
    if from_records.is_streamed(splits):
        eval_bs = mesh_lib.batch_for_devices(batch_size, int(mesh.devices.size))
        # Train batches are never read here: the smallest global batch every process can split.
        source = splits.stream(batch_size=jax.process_count(), eval_batch_size=eval_bs, seed=0)
        return streamed_eval_inputs(source, mean=splits.mean, std=splits.std, mesh=mesh)
    eval_bs = min(mesh_lib.batch_for_devices(batch_size, 1), splits.test.num_examples)
    return resident_eval_inputs(splits.test, batch_size=eval_bs, mean=splits.mean, std=splits.std, mesh=None)
