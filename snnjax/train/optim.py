"""Optimizers and per-step learning-rate schedules defined in epochs.

SGD's weight decay is PyTorch's: ``wd * param`` is added to the gradient *before* momentum
(``optax.add_decayed_weights`` then ``optax.sgd``), which is what the papers' code does. Adam's
``weight_decay`` is likewise L2 added to the gradient (PyTorch ``Adam(weight_decay=...)``);
``adamw`` decouples it.
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections
import optax

OPTIMIZERS = ("sgd", "adam", "amsgrad", "adamw")
SCHEDULES = ("multistep", "step", "cosine", "constant")


def learning_rate_schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int, epochs: int) -> optax.Schedule:
    """Per-step schedule from ``config.optim``.

    ``multistep``: lr x gamma at each epoch in ``milestones``; ``step``: lr x gamma every
    ``step_epochs`` epochs (the IDSNN convergence study's 10/20-epoch decay); ``cosine`` over all
    epochs; ``constant``. Optional linear warm-up over ``warmup_epochs``.
    """
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"config.optim.schedule={cfg.schedule!r} is not valid; choose one of {list(SCHEDULES)}")
    if cfg.lr <= 0:
        raise ValueError(f"config.optim.lr must be > 0, got {cfg.lr}")
    lr, total = float(cfg.lr), steps_per_epoch * epochs
    if cfg.schedule == "multistep":
        boundaries = {int(m) * steps_per_epoch: float(cfg.gamma) for m in cfg.milestones}
        schedule = optax.piecewise_constant_schedule(lr, boundaries)
    elif cfg.schedule == "step":
        if int(cfg.step_epochs) < 1:
            raise ValueError(f"config.optim.step_epochs must be >= 1, got {cfg.step_epochs}")
        schedule = optax.exponential_decay(lr, int(cfg.step_epochs) * steps_per_epoch, float(cfg.gamma), staircase=True)
    elif cfg.schedule == "cosine":
        schedule = optax.cosine_decay_schedule(lr, max(total, 1))
    else:
        schedule = optax.constant_schedule(lr)
    warmup = int(cfg.get("warmup_epochs", 0)) * steps_per_epoch
    if warmup:
        schedule = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), schedule], [warmup])
    return schedule


def make_optimizer(cfg: ml_collections.ConfigDict, schedule: optax.Schedule) -> optax.GradientTransformation:
    """The optimizer of ``config.optim`` driven by ``schedule``."""
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"config.optim.name={cfg.name!r} is not valid; choose one of {list(OPTIMIZERS)}")
    wd = float(cfg.weight_decay)
    if wd < 0:
        raise ValueError(f"config.optim.weight_decay must be >= 0, got {wd}")
    if cfg.name == "adamw":
        return optax.adamw(schedule, weight_decay=wd)
    decay = [optax.add_decayed_weights(wd)] if wd else []
    if cfg.name == "sgd":
        momentum = float(cfg.momentum) or None
        return optax.chain(*decay, optax.sgd(schedule, momentum=momentum, nesterov=bool(cfg.nesterov)))
    if cfg.name == "amsgrad":
        return optax.chain(*decay, optax.amsgrad(schedule))
    return optax.chain(*decay, optax.adam(schedule))


def freeze(tx: optax.GradientTransformation, trainable: Any) -> optax.GradientTransformation:
    """``tx`` for the parameters whose leaf in ``trainable`` (a params-shaped tree of bools) is True;
    the others get zero updates (no weight decay either): PyTorch's ``requires_grad=False``."""
    labels = jax.tree.map(lambda t: "train" if t else "frozen", trainable)
    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
