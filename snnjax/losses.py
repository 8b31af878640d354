"""Classification losses and metrics: cross-entropy, Hinton knowledge distillation, TET, accuracy.

Shapes: ``logits`` ``[B, K]`` (any float dtype; cast to float32 first), ``labels`` int ``[B]`` in
``[0, K)``, optional ``mask`` ``[B]`` (bool or float weights) marking the valid entries of a padded
batch. Every function returns a float32 scalar. Masked means are weighted means over the valid
entries and are 0 when no entry is valid.

IDSNN (design section 6) trains the student with
``CE(y, z_s) + alpha * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))``, ``tau = 4``,
``alpha = 0.3``, the KL summed over classes and averaged over the batch (PyTorch ``KLDivLoss`` with
``reduction='batchmean'``).

TET (:func:`tet`, Deng et al. ICLR 2022) takes a spiking model's per-time-step logits ``[B, T, K]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_logits_labels(logits: jax.Array, labels: jax.Array, fn: str) -> None:
    if logits.ndim != 2:
        raise ValueError(f"{fn}: logits must be [B, K], got shape {logits.shape}")
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"{fn}: labels must be integer class indices [B] = [{logits.shape[0]}] matching logits "
            f"{logits.shape}, got shape {labels.shape} (one-hot labels: take argmax first)"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"{fn}: labels must be integer class indices, got dtype {labels.dtype}")


def _weights(mask: jax.Array | None, batch: int, fn: str) -> jax.Array:
    """Float32 ``[B]`` weights: ones without a mask, else the mask as float32."""
    if mask is None:
        return jnp.ones((batch,), jnp.float32)
    mask = jnp.asarray(mask)
    if mask.shape != (batch,):
        raise ValueError(f"{fn}: mask must have shape [B] = ({batch},), got {mask.shape}")
    return mask.astype(jnp.float32)


def _weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """``sum(w * v) / sum(w)`` for ``[B]`` inputs; 0 when ``sum(w) == 0``."""
    total = jnp.sum(weights)
    safe = jnp.where(total > 0, total, 1.0)
    return jnp.where(total > 0, jnp.sum(weights * values) / safe, 0.0)


def _check_temperature(temperature: float, fn: str) -> None:
    if isinstance(temperature, (int, float)) and not temperature > 0:
        raise ValueError(f"{fn}: temperature must be > 0, got {temperature}")


def cross_entropy(
    logits: jax.Array, labels: jax.Array, *, label_smoothing: float = 0.0, mask: jax.Array | None = None
) -> jax.Array:
    """Softmax cross-entropy, mean over the (valid) batch entries.

    Args:
      logits: ``[B, K]``.
      labels: int ``[B]``.
      label_smoothing: ``eps``; the target is ``(1 - eps) * one_hot + eps / K`` (PyTorch's rule).
      mask: optional ``[B]`` validity mask / weights.

    Returns:
      float32 scalar.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    _check_logits_labels(logits, labels, "cross_entropy")
    if isinstance(label_smoothing, (int, float)) and not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    num_classes = logits.shape[-1]
    targets = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
    per_example = -jnp.sum(targets * log_p, axis=-1)
    return _weighted_mean(per_example, _weights(mask, logits.shape[0], "cross_entropy"))


def kd_kl(
    student_logits: jax.Array, teacher_logits: jax.Array, *, temperature: float = 4.0, mask: jax.Array | None = None
) -> jax.Array:
    """``KL(softmax(z_t / tau) || softmax(z_s / tau))`` summed over classes, mean over the batch.

    PyTorch ``KLDivLoss(reduction='batchmean')(log_softmax(z_s / tau), softmax(z_t / tau))``,
    computed from log-softmaxes (no ``tau^2`` factor here; see :func:`hinton_kd`).

    Args:
      student_logits: ``[B, K]``.
      teacher_logits: ``[B, K]``.
      temperature: ``tau > 0``.
      mask: optional ``[B]`` validity mask / weights.

    Returns:
      float32 scalar, >= 0.
    """
    student_logits, teacher_logits = jnp.asarray(student_logits), jnp.asarray(teacher_logits)
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"kd_kl: student and teacher logits must both be [B, K], got shapes "
            f"{student_logits.shape} (student) and {teacher_logits.shape} (teacher)"
        )
    _check_temperature(temperature, "kd_kl")
    log_p_s = jax.nn.log_softmax(student_logits.astype(jnp.float32) / temperature, axis=-1)
    log_p_t = jax.nn.log_softmax(teacher_logits.astype(jnp.float32) / temperature, axis=-1)
    per_example = jnp.sum(jnp.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)
    return _weighted_mean(per_example, _weights(mask, student_logits.shape[0], "kd_kl"))


# IDSNN's distillation settings (official code): the one home of the KD defaults; ``config.kd`` starts here.
KD_TEMPERATURE = 4.0
KD_ALPHA = 0.3


def hinton_kd(
    student_logits: jax.Array,
    teacher_logits: jax.Array,
    labels: jax.Array,
    *,
    temperature: float = KD_TEMPERATURE,
    alpha: float = KD_ALPHA,
    mask: jax.Array | None = None,
) -> jax.Array:
    """IDSNN/Hinton distillation loss ``CE(y, z_s) + alpha * tau^2 * kd_kl(z_s, z_t; tau)``.

    The teacher logits are wrapped in ``jax.lax.stop_gradient``: no gradient reaches the teacher.

    Args:
      student_logits: ``[B, K]``.
      teacher_logits: ``[B, K]``.
      labels: int ``[B]``.
      temperature: ``tau`` (4 in IDSNN).
      alpha: weight of the distillation term (0.3 in IDSNN).
      mask: optional ``[B]`` validity mask / weights, applied to both terms.

    Returns:
      float32 scalar.
    """
    teacher_logits = jax.lax.stop_gradient(jnp.asarray(teacher_logits))
    ce = cross_entropy(student_logits, labels, mask=mask)
    kl = kd_kl(student_logits, teacher_logits, temperature=temperature, mask=mask)
    return ce + alpha * temperature**2 * kl


# TET's defaults, those of the official code (gus-lab/temporal_efficient_training: ``--lamb 1e-3``,
# ``--means 1.0``): the one home of the TET defaults; ``config.train.tet_*`` start here.
TET_LAMBDA = 1e-3
TET_TARGET = 1.0
# The training objectives a train step offers (config.train.loss; snnjax.train.steps.Objective).
TRAIN_LOSSES = ("ce", "tet")


def tet(
    per_step_logits: jax.Array,
    labels: jax.Array,
    *,
    lam: float = TET_LAMBDA,
    target: float = TET_TARGET,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Temporal Efficient Training loss (Deng et al., ICLR 2022).

    ``(1 - lam) * L_TET + lam * L_MSE`` with, for per-step logits ``O(t)``, ``t = 1..T``::

        L_TET = 1/T sum_t CE(O(t), y)                      (mean over the batch)
        L_MSE = 1/T sum_t 1/K sum_k (O(t)_k - target)^2     (mean over the batch)

    i.e. the official ``TET_loss(outputs, labels, criterion, means, lamb)``: the cross-entropy of every
    time step's logits against the label, averaged over time, plus ``lam`` times the mean squared
    distance of every logit from ``target`` (``phi``). With ``T = 1`` it is
    ``(1 - lam) * CE + lam * MSE`` of the one output.

    Args:
      per_step_logits: ``[B, T, K]`` (any float dtype; cast to float32 first).
      labels: int ``[B]`` in ``[0, K)``, the same label at every step.
      lam: ``lambda`` in ``[0, 1]``, the weight of the MSE regulariser (0 = pure per-step CE).
      target: ``phi``, the value the regulariser pulls every logit towards.
      mask: optional ``[B]`` validity mask / weights, applied to both terms.

    Returns:
      float32 scalar.
    """
    per_step_logits, labels = jnp.asarray(per_step_logits), jnp.asarray(labels)
    if per_step_logits.ndim != 3:
        raise ValueError(f"tet: per_step_logits must be [B, T, K], got shape {per_step_logits.shape}")
    batch = per_step_logits.shape[0]
    _check_logits_labels(per_step_logits[:, 0], labels, "tet")
    if isinstance(lam, (int, float)) and not 0.0 <= lam <= 1.0:
        raise ValueError(f"tet: lam must be in [0, 1], got {lam}")
    z = per_step_logits.astype(jnp.float32)
    log_p = jax.nn.log_softmax(z, axis=-1)
    nll = -jnp.take_along_axis(log_p, labels[:, None, None], axis=-1)[..., 0]  # [B, T]
    ce_per_example = jnp.mean(nll, axis=1)
    mse_per_example = jnp.mean(jnp.square(z - target), axis=(1, 2))
    weights = _weights(mask, batch, "tet")
    return (1.0 - lam) * _weighted_mean(ce_per_example, weights) + lam * _weighted_mean(mse_per_example, weights)


def _correct(logits: jax.Array, labels: jax.Array, fn: str) -> jax.Array:
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    _check_logits_labels(logits, labels, fn)
    return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def correct_count(logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Number of (valid) entries whose argmax equals the label, float32 scalar.

    ``logits`` ``[B, K]``, ``labels`` int ``[B]``, ``mask`` optional ``[B]`` (bool or weights).
    """
    correct = _correct(logits, labels, "correct_count")
    return jnp.sum(correct * _weights(mask, correct.shape[0], "correct_count"))


def accuracy(logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Fraction of (valid) entries whose argmax equals the label, float32 scalar in ``[0, 1]``.

    ``logits`` ``[B, K]``, ``labels`` int ``[B]``, ``mask`` optional ``[B]`` (bool or weights);
    0 when no entry is valid.
    """
    correct = _correct(logits, labels, "accuracy")
    return _weighted_mean(correct, _weights(mask, correct.shape[0], "accuracy"))
