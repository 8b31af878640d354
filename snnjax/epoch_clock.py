"""The epoch as a model input: layers whose behaviour follows a per-epoch schedule read it here.

A layer with a schedule (pipe-S's :class:`~snnjax.methods.pretrain.sharpened.SharpenedReLU`, the
masked PSN's ``lambda`` ramp: :class:`~snnjax.layers.ParallelSpikingNeuron`) owns a float32 scalar
variable ``epoch`` in the collection :data:`COLLECTION`. The engine carries that collection in
``TrainState.model_state`` like BN statistics, so it is checkpointed, restored and sharded with the
rest, and the training loop wraps every train step in :func:`fed`, which writes the 1-based epoch
``state.step // steps_per_epoch + 1`` into every such leaf before the forward pass. Evaluation reads
the last value written: the epoch the weights were trained at.

Why an input and not a constant of the module: a constant would change the compiled step every
epoch (one compilation per epoch), and the epoch is a pure function of ``state.step``, so a resumed
run sees the same schedule as an uninterrupted one. A model without the collection is untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

COLLECTION = "schedule"
VARIABLE = "epoch"


def feed_epoch(model_state: dict[str, Any], epoch: jax.Array) -> dict[str, Any]:
    """``model_state`` with every leaf of :data:`COLLECTION` set to ``epoch`` (in the leaf's dtype)."""
    if COLLECTION not in model_state:
        return model_state
    fed = jax.tree.map(lambda leaf: jnp.asarray(epoch, leaf.dtype), model_state[COLLECTION])
    return {**model_state, COLLECTION: fed}


def epoch_of_step(step: jax.Array, steps_per_epoch: int) -> jax.Array:
    """The 1-based epoch (float32) that optimizer step ``step`` (0-based) belongs to."""
    return (step // steps_per_epoch + 1).astype(jnp.float32)


def fed(train_step: Callable, steps_per_epoch: int) -> Callable:
    """``train_step`` (``(state, *batch, teacher_variables) -> (state, metrics)``) feeding the epoch first."""

    def step(state, *args):
        epoch = epoch_of_step(state.step, steps_per_epoch)
        return train_step(state.replace(model_state=feed_epoch(state.model_state, epoch)), *args)

    return step


def current_epoch(variables: dict[str, Any]) -> float | None:
    """The epoch last fed to ``variables`` (``{"params": ..., COLLECTION: ...}``); None without the collection."""
    leaves = jax.tree.leaves(variables.get(COLLECTION, {}))
    return float(max(jax.device_get(leaf) for leaf in leaves)) if leaves else None


def variable(module: Any) -> jax.Array:
    """Inside a Flax module's ``__call__``: the fed epoch (0.0 before the first training step)."""
    return module.variable(COLLECTION, VARIABLE, lambda: jnp.zeros((), jnp.float32)).value
