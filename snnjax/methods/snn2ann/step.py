"""The SNN2ANN train step: loss on the ANN branch, ATA and BN statistics updated in the same pass.

``make_train_step`` has the signature of :func:`snnjax.train.steps.make_train_step`, so a pipeline
passes it to :func:`snnjax.train.loop.train_and_evaluate` as ``make_step``. One step:

1. runs both branches of the model over one parameter tree (``branches(x, train=True)``): the SNN
   branch with the current thresholds and BN running statistics (no gradient), the ANN branch with
   batch statistics, dropout and the spiking mapping units;
2. takes cross-entropy on the ANN branch's logits and its gradient w.r.t. the shared parameters;
3. keeps the model's writes: BN running statistics (``batch_stats``) and the ATA-adjusted
   thresholds (``thresholds``), both carried by ``TrainState.model_state``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from snnjax import losses
from snnjax.train import steps as engine_steps
from snnjax.train.state import TrainState, step_key

STATS = "spike_stats"


def _mean_of_sown(tree: Any, name: str) -> jax.Array:
    """Mean of every value sown under ``name`` in a ``spike_stats`` tree (NaN if none)."""
    values = [
        leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
        if any(getattr(k, "key", None) == name for k in path)
    ]
    return jnp.mean(jnp.stack([jnp.asarray(v, jnp.float32).reshape(()) for v in values])) if values else jnp.nan


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    distillation: engine_steps.Distillation | None = None,
    nonfinite: engine_steps.NonFinite = "stop",
) -> Callable[[TrainState, engine_steps.Batch, Any], tuple[TrainState, engine_steps.Metrics]]:
    """Build ``train_step(state, (images [B, H, W, C], labels [B]), teacher_variables) -> (state, metrics)``.

    ``model`` must have a ``branches(x, *, train, ann)`` method returning
    :class:`snnjax.methods.snn2ann.models.BranchOutputs`. ``metrics``: ``loss`` (ANN-branch CE),
    ``accuracy`` (ANN branch), ``snn_accuracy`` (SNN branch, same batch), ``noisy_ratio`` and
    ``firing_rate`` (means over layers), ``threshold_mean`` (after ATA), ``grad_norm``, ``finite``.
    With ``nonfinite="skip"`` a non-finite step changes no parameter, statistic or threshold.
    """
    if distillation is not None:
        raise ValueError("SNN2ANN trains on labels only: the pipeline takes no teacher (set config.kd.enabled=False)")
    if not hasattr(model, "branches"):
        raise TypeError(
            f"{type(model).__name__} has no `branches` method; build the model with "
            "snnjax.models.build (or train it with snnjax.train.steps.make_train_step)"
        )

    def train_step(
        state: TrainState, batch: engine_steps.Batch, teacher_variables: Any = None
    ) -> tuple[TrainState, engine_steps.Metrics]:
        del teacher_variables
        inputs, labels = batch
        rngs = engine_steps.model_rngs(step_key(state, engine_steps.MODEL_STREAM))

        def loss_fn(params):
            out, updates = model.apply(
                {"params": params, **state.model_state},
                inputs,
                train=True,
                ann=True,
                method="branches",
                mutable=[*state.model_state, STATS],
                rngs=rngs,
            )
            new_model_state = {k: updates.get(k, v) for k, v in state.model_state.items()}
            loss = losses.cross_entropy(out.ann_logits, labels)
            return loss, (out, new_model_state, updates.get(STATS, {}))

        (loss, (out, new_model_state, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        new_state, grad_norm, finite = engine_steps.apply_gradients(state, grads, loss, new_model_state, tx, nonfinite)
        thresholds = jax.tree.leaves(new_state.model_state.get("thresholds", {}))
        metrics = {
            "loss": loss,
            "accuracy": losses.accuracy(out.ann_logits, labels),
            "snn_accuracy": losses.accuracy(out.snn_logits, labels),
            "noisy_ratio": _mean_of_sown(stats, "noisy_ratio"),
            "firing_rate": _mean_of_sown(stats, "firing_rate"),
            "threshold_mean": jnp.mean(jnp.stack([jnp.mean(t) for t in thresholds])) if thresholds else jnp.nan,
            "grad_norm": grad_norm,
            "finite": finite.astype(jnp.float32),
        }
        return new_state, metrics

    return train_step
