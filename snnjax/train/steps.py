"""Pure train and eval steps for ANN and SNN models, with optional knowledge distillation.

``train_step(state, batch, teacher_variables) -> (state, metrics)`` is a pure function of its
inputs: its randomness comes from ``fold_in(state.rng, state.step)`` so a resumed run draws the same
numbers. :func:`with_inputs` makes it build its batch on the device (gather, random crop, flip,
normalise: :mod:`snnjax.train.inputs`), so the host never stalls the accelerator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from snnjax import losses
from snnjax.train.state import TrainState, step_key

Batch = tuple[jax.Array, jax.Array]  # (inputs [B, ...], int32 labels [B])
Metrics = dict[str, jax.Array]
NonFinite = Literal["stop", "skip"]
AUGMENT_STREAM, MODEL_STREAM = 0, 1
# Collections a model may write for inspection only; never part of the train state.
TRANSIENT_COLLECTIONS = ("spike_stats", "intermediates")


@dataclasses.dataclass(frozen=True)
class Distillation:
    """Hinton KD from a frozen teacher run in inference mode on the same augmented batch."""

    teacher: nn.Module
    temperature: float  # config.kd.temperature
    alpha: float  # config.kd.alpha


@dataclasses.dataclass(frozen=True)
class Objective:
    """The supervised loss a train step minimises (without the KD term, which :class:`Distillation` adds).

    ``loss="ce"``: cross-entropy of the model's output (its logits averaged over time). ``loss="tet"``:
    :func:`snnjax.losses.tet` of the per-time-step logits (the model must accept ``per_step=True``,
    as :class:`snnjax.models.ResNet` does), weight ``tet_lambda`` on the MSE term towards ``tet_target``.
    """

    loss: str = "ce"  # config.train.loss
    tet_lambda: float = losses.TET_LAMBDA  # config.train.tet_lambda
    tet_target: float = losses.TET_TARGET  # config.train.tet_target

    def __post_init__(self):
        if self.loss not in losses.TRAIN_LOSSES:
            raise ValueError(f"Objective.loss={self.loss!r} is not valid: choose one of {list(losses.TRAIN_LOSSES)}")


def objective_from_config(train: Any) -> Objective:
    """The :class:`Objective` of a ``config.train`` section (a section written before these keys: CE)."""
    return Objective(
        loss=train.get("loss", "ce"),
        tet_lambda=float(train.get("tet_lambda", losses.TET_LAMBDA)),
        tet_target=float(train.get("tet_target", losses.TET_TARGET)),
    )


def model_rngs(key: jax.Array) -> dict[str, jax.Array]:
    """RNG streams a model may use: ``dropout`` and ``encoding`` (e.g. Poisson input spikes)."""
    return {"dropout": jax.random.fold_in(key, 0), "encoding": jax.random.fold_in(key, 1)}


def apply_train(
    model: nn.Module,
    params: Any,
    model_state: dict[str, Any],
    inputs: jax.Array,
    key: jax.Array,
    *,
    per_step: bool = False,
) -> tuple[jax.Array, dict[str, Any]]:
    """Training-mode forward pass: ``(logits, new model_state)``; ``per_step``: logits ``[B, T, K]``."""
    extra = {"per_step": True} if per_step else {}  # models without the keyword are called as before
    logits, updates = model.apply(
        {"params": params, **model_state}, inputs, train=True, mutable=list(model_state), rngs=model_rngs(key), **extra
    )
    return logits, {k: updates.get(k, v) for k, v in model_state.items()}


def apply_gradients(
    state: TrainState,
    grads: Any,
    loss: jax.Array,
    new_model_state: dict[str, Any],
    tx: optax.GradientTransformation,
    nonfinite: NonFinite,
) -> tuple[TrainState, jax.Array, jax.Array]:
    """One optimizer update: ``(new_state, grad_norm, finite)``; the step counter always advances.

    ``finite`` is true when ``loss`` and the gradients' global norm are finite. With
    ``nonfinite="skip"`` a non-finite step keeps the old parameters, model state (BN statistics,
    thresholds, ...) and optimizer state; with ``"stop"`` the caller's loop halts on ``finite``.
    """
    updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    if nonfinite == "skip":
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)  # noqa: E731
        new_params = keep(new_params, state.params)
        new_model_state = keep(new_model_state, state.model_state)
        new_opt_state = keep(new_opt_state, state.opt_state)
    new_state = state.replace(
        step=state.step + 1, params=new_params, model_state=new_model_state, opt_state=new_opt_state
    )
    return new_state, grad_norm, finite


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    distillation: Distillation | None = None,
    nonfinite: NonFinite = "stop",
    objective: Objective | None = None,
) -> Callable[[TrainState, Batch, Any], tuple[TrainState, Metrics]]:
    """Build ``train_step(state, (inputs, labels), teacher_variables) -> (state, metrics)``.

    The loss is cross-entropy, or ``CE + alpha * tau^2 * KL`` when ``distillation`` is given (the
    teacher's logits are computed inside the step under ``stop_gradient``; pass its variables as
    ``teacher_variables``, else ``None``). ``objective`` (default: CE) may replace the CE term by TET
    on the per-step logits: ``TET + alpha * tau^2 * KL``, the KL term on the student's logits averaged
    over time (the output the network gives at inference, which the teacher's one output is compared
    with). ``accuracy`` is that of the time-averaged logits. ``metrics``: ``loss``, ``accuracy``, ``grad_norm`` and
    ``finite`` (1.0 when loss and gradients are finite). With ``nonfinite="skip"`` a non-finite
    step leaves parameters, BN statistics and optimizer state unchanged (the step still counts).

    A pipeline with a different objective (e.g. SNN2ANN) passes its own factory with this
    signature to :func:`snnjax.train.loop.train_and_evaluate` as ``make_step``.
    """

    tet = objective is not None and objective.loss == "tet"

    def train_step(state: TrainState, batch: Batch, teacher_variables: Any = None) -> tuple[TrainState, Metrics]:
        inputs, labels = batch
        key = step_key(state, MODEL_STREAM)
        teacher_logits = None
        if distillation is not None:
            teacher_logits = jax.lax.stop_gradient(distillation.teacher.apply(teacher_variables, inputs, train=False))

        def loss_fn(params):
            if tet:
                per_step, new_stats = apply_train(model, params, state.model_state, inputs, key, per_step=True)
                logits = jnp.mean(per_step, axis=1)  # the model's output: [B, K]
                loss = losses.tet(per_step, labels, lam=objective.tet_lambda, target=objective.tet_target)
                if teacher_logits is not None:
                    kl = losses.kd_kl(logits, teacher_logits, temperature=distillation.temperature)
                    loss = loss + distillation.alpha * distillation.temperature**2 * kl
                return loss, (logits, new_stats)
            logits, new_stats = apply_train(model, params, state.model_state, inputs, key)
            if teacher_logits is None:
                loss = losses.cross_entropy(logits, labels)
            else:
                loss = losses.hinton_kd(
                    logits, teacher_logits, labels, temperature=distillation.temperature, alpha=distillation.alpha
                )
            return loss, (logits, new_stats)

        (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        new_state, grad_norm, finite = apply_gradients(state, grads, loss, new_stats, tx, nonfinite)
        metrics = {
            "loss": loss,
            "accuracy": losses.accuracy(logits, labels),
            "grad_norm": grad_norm,
            "finite": finite.astype(jnp.float32),
        }
        return new_state, metrics

    return train_step


def with_inputs(train_step: Callable, batch_fn: Callable[[TrainState, jax.Array, jax.Array], Batch]) -> Callable:
    """Fuse batch construction into the step: ``step(state, images, labels, teacher_variables)``.

    ``batch_fn(state, images, labels) -> (x, y)`` builds the step's batch on the device from its two
    array arguments (:class:`snnjax.train.inputs.TrainInputs`: the whole resident split, or a streamed
    uint8 batch); its randomness comes from the state, which is what makes resumed runs exact.
    """

    def step(state: TrainState, images: jax.Array, labels: jax.Array, teacher_variables: Any = None):
        return train_step(state, batch_fn(state, images, labels), teacher_variables)

    return step


def make_eval_step(model: nn.Module) -> Callable[[Any, jax.Array, jax.Array, jax.Array], Metrics]:
    """``eval_step(variables, inputs, labels, mask) -> {correct, loss_sum, count}`` (sums, float32).

    ``mask`` [B] marks real examples, so a padded last batch counts each test example once.
    """

    def eval_step(
        variables: Any, inputs: jax.Array, labels: jax.Array, mask: jax.Array, key: jax.Array | None = None
    ) -> Metrics:
        key = jax.random.key(0) if key is None else key
        logits = model.apply(variables, inputs, train=False, rngs=model_rngs(key))
        count = jnp.sum(mask.astype(jnp.float32))
        return {
            "correct": losses.correct_count(logits, labels, mask),
            "loss_sum": losses.cross_entropy(logits, labels, mask=mask) * count,
            "count": count,
        }

    return eval_step
