"""IDSNN config sections (``transplant``, ``teacher``), the ablation arms, and their validation."""

from __future__ import annotations

import ml_collections

from snnjax import config as config_lib
from snnjax import losses, models, presets
from snnjax.methods.idsnn import transplant
from snnjax.train import stages

# The paper's ablation arms: (transplant.enabled, kd.enabled). First: the order of the ablation table.
ARMS = {"baseline": (False, False), "init_only": (True, False), "kd_only": (False, True), "idsnn": (True, True)}
DEFAULT_ARM = "idsnn"
# KD weight per arm, as in the official code: train_kd.py (KD only) uses 0.5, the IDSNN script 0.3
# (losses.KD_ALPHA, the library default).
KD_ALPHA = {arm: (0.5 if arm == "kd_only" else losses.KD_ALPHA) for arm in ARMS}
# The official code has no init code: PyTorch's defaults, for the student, the baseline and the teacher.
INIT = "pytorch"


def apply_arm(cfg: ml_collections.ConfigDict, arm: str) -> ml_collections.ConfigDict:
    """Set ``cfg`` to ablation ``arm`` in place (and return it): the transplant and KD switches and the
    arm's KD weight. The one place an arm is decided: ``configs/idsnn.py`` and the ablation runner call it."""
    if arm not in ARMS:
        config_lib.fail("arm", arm, f"choose one of {list(ARMS)}")
    cfg.transplant.enabled, cfg.kd.enabled = ARMS[arm]
    cfg.kd.alpha = KD_ALPHA[arm]
    return cfg


def student_model() -> ml_collections.ConfigDict:
    """The student / baseline SNN: the library's Spiking ResNet18 with the official code's init."""
    return models.model_config(init=INIT)


def teacher_model() -> ml_collections.ConfigDict:
    """The ANN teacher (ResNet34, ReLU, T = 1) with the official code's init."""
    return presets.teacher_model(init=INIT)


def transplant_section(enabled: bool = True) -> ml_collections.ConfigDict:
    """``config.transplant``: the switch and the mapping options of :func:`transplant.transplant`."""
    return ml_collections.ConfigDict(
        dict(
            enabled=enabled,
            block_rule="first",
            include_stem=True,
            include_shortcut=False,
            include_head=False,
            checkpoint="",
        )
    )  # workdir of another finished ANN run to transplant from; "" = the KD teacher


def teacher_section() -> ml_collections.ConfigDict:
    """``config.teacher``: the ANN teacher (ResNet34, ReLU, T = 1) and its training."""
    return ml_collections.ConfigDict(
        dict(
            checkpoint="",  # workdir of a finished teacher run; "" trains the teacher as stage 1
            model=teacher_model(),
            optim=config_lib.optim_config(),
            train=config_lib.train_config(),
        )
    )


def teacher_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The single-stage config that trains the teacher: the run's data, the teacher's model/optim/train."""
    return stages.sub_stage_config(
        config,
        model=config.teacher.model,
        optim=config.teacher.optim,
        train=config.teacher.train,
        drop=("teacher", "transplant"),
    )


def teacher_restore(config: ml_collections.ConfigDict) -> stages.Restore:
    return stages.Restore(
        config.teacher.checkpoint,
        "config.teacher.checkpoint",
        ("teacher", "train"),
        "teacher",
        "pass the --workdir of a finished `launch.py --config configs/teacher.py` run, or leave it empty "
        "to train the teacher here.",
    )


def transplant_source_restore(config: ml_collections.ConfigDict) -> stages.Restore:
    return stages.Restore(
        config.transplant.get("checkpoint", ""),
        "config.transplant.checkpoint",
        ("teacher", "train"),
        "ANN",
        "pass the --workdir of a finished `launch.py --config configs/teacher.py` run (any ResNet depth), "
        "or leave it empty to transplant from the KD teacher.",
    )


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Check the ``teacher`` and ``transplant`` sections (the shared ones are checked by ``config.validate``)."""
    models.validate(cfg.teacher.model, "teacher.model")
    config_lib.validate_optim(cfg.teacher.optim, "teacher.optim")
    config_lib.validate_train(cfg.teacher.train, "teacher.train")
    if cfg.teacher.model.neuron != "relu":
        config_lib.fail("teacher.model.neuron", cfg.teacher.model.neuron, "the teacher is an ANN: use 'relu'")
    if cfg.transplant.block_rule not in transplant.RULES:
        config_lib.fail("transplant.block_rule", cfg.transplant.block_rule, f"choose one of {list(transplant.RULES)}")
