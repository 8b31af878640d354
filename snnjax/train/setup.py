"""What a stage's config decides before its first step, decided once: :func:`plan`.

Steps per epoch, total steps, the learning-rate schedule, the optimizer and the abstract train state
(shapes, dtypes and shardings, nothing computed) follow from ``config.data.batch_size``,
``config.train.epochs``, ``config.optim``, the model and the training split. The training loop's
fresh start (:func:`snnjax.train.loop.set_up`) and the restore of a finished stage
(:func:`snnjax.train.stages.restore_stage`) both take them from one :class:`Plan`, so the two can
never disagree on the step count or the optimizer-state structure a checkpoint must match.

The mesh is an argument: it is built once per process (``launch.py``, or the first entry point a
library user calls) and handed down.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from snnjax import data as data_lib
from snnjax.data import batches as data_batches
from snnjax.train import mesh as mesh_lib
from snnjax.train import optim, steps
from snnjax.train.state import TrainState, create_train_state


@dataclasses.dataclass(frozen=True)
class Plan:
    """The setup of one stage.

    Attributes:
      batch_size: global training batch (``config.data.batch_size``), a multiple of the device count.
      steps_per_epoch: optimizer steps per epoch (the last partial batch is dropped).
      total_steps: ``steps_per_epoch * config.train.epochs``.
      schedule: step -> learning rate.
      tx: the optimizer (with frozen leaves when the stage trains only part of the params).
      abstract_state: the :class:`TrainState` as ``jax.ShapeDtypeStruct`` leaves, replicated on the mesh:
        the target structure of every restore.
    """

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    schedule: optax.Schedule
    tx: optax.GradientTransformation
    abstract_state: TrainState


def _init_fn(model: nn.Module, image_shape: tuple[int, ...]):
    sample = jnp.zeros((1,) + tuple(image_shape), jnp.float32)

    def init(key: jax.Array) -> dict[str, Any]:
        variables = model.init({"params": key, **steps.model_rngs(key)}, sample, train=False)
        return {k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}

    return init


def plan(
    config: ml_collections.ConfigDict,
    splits: data_lib.DatasetSplits,
    model: nn.Module,
    mesh: Any,
    *,
    trainable: Any = None,
) -> Plan:
    """The :class:`Plan` of a stage trained with ``config`` on ``splits``; nothing is compiled.

    Raises ``ValueError`` when ``config.data.batch_size`` does not split over the mesh's devices.
    """
    batch_size = int(config.data.batch_size)
    mesh_lib.check_batch_size(batch_size, mesh)
    spe = data_batches.steps_per_epoch(splits.train.num_examples, batch_size)
    epochs = int(config.train.epochs)
    schedule = optim.learning_rate_schedule(config.optim, spe, epochs)
    tx = optim.make_optimizer(config.optim, schedule)
    if trainable is not None:
        tx = optim.freeze(tx, trainable)
    init = _init_fn(model, splits.image_shape)
    shapes = jax.eval_shape(lambda key: create_train_state(init(key), tx, key), jax.random.key(0))
    repl = mesh_lib.replicated(mesh)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), shapes)
    return Plan(batch_size, spe, spe * epochs, schedule, tx, abstract)


def init_variables(model: nn.Module, image_shape: tuple[int, ...], seed: int, mesh: Any) -> dict[str, Any]:
    """Initial variables (``params`` and mutable collections such as ``batch_stats``), replicated."""
    key = jax.random.fold_in(jax.random.key(seed), 1)
    return jax.jit(_init_fn(model, image_shape), out_shardings=mesh_lib.replicated(mesh))(key)


def initial_state(
    stage_plan: Plan,
    variables: dict[str, Any],
    seed: int,
    mesh: Any,
    *,
    initial_opt_state: Any = None,
) -> TrainState:
    """The step-0 state from ``variables`` (fresh or given, e.g. transplanted), replicated on ``mesh``.

    ``initial_opt_state``: ``fresh_opt_state -> opt_state`` (e.g. momentum buffers of an earlier stage).
    """
    repl = mesh_lib.replicated(mesh)
    variables = jax.device_put({k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}, repl)
    state_key = jax.random.fold_in(jax.random.key(seed), 2)
    state = jax.jit(lambda v: create_train_state(v, stage_plan.tx, state_key), out_shardings=repl)(variables)
    if initial_opt_state is not None:
        state = state.replace(opt_state=jax.device_put(initial_opt_state(jax.device_get(state.opt_state)), repl))
    return state
