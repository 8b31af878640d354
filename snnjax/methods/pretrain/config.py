"""Pretraining-as-a-bridge config: the ``pretrain`` section's defaults, the stage-1 config, validation."""

from __future__ import annotations

import ml_collections

from snnjax import config as config_lib
from snnjax import models
from snnjax.train import stages

ACTIVATIONS = ("sharpened", "relu")  # the first is the default (the official README's WSresnet18)
PRETRAIN_STAGE, FINETUNE_STAGE = "pretrain", "finetune"

# The dataset presets of configs/pretrain.py, and the event version pipe-D fine-tunes on.
DATASETS = (
    "digits",
    "cifar10",
    "fashion_mnist",
    "fashion_mnist_60k",
    "fashion_mnist_full",
    "imagenet",
)  # imagenet: pipe-S only
EVENT_DATA = {
    "digits": "digits_events",
    "cifar10": "cifar10_events",
    "fashion_mnist": "fashion_mnist_events",
    "fashion_mnist_60k": "fashion_mnist_events",
    "fashion_mnist_full": "fashion_mnist_events",
}
# Epochs per dataset preset: stage 1 (pretraining) and stage 2 (fine-tuning, pipe-S).
# fashion_mnist_60k (all 60,000 images on the 2-core CPU, docs/pretrain.md "60k"): the ANN 5 epochs; the
# SNN 10 epochs (the official fine-tuning's lr cuts at 2/4/6/8 all fall inside), the cap of the scratch
# SNN too.
PRETRAIN_EPOCHS = {
    "digits": 20,
    "cifar10": 100,
    "fashion_mnist": 6,
    "fashion_mnist_60k": 5,
    "fashion_mnist_full": 100,
    "imagenet": 100,
}
FINETUNE_EPOCHS = {
    "digits": 10,
    "cifar10": 50,
    "fashion_mnist": 6,
    "fashion_mnist_60k": 10,
    "fashion_mnist_full": 50,
    "imagenet": 50,
}
# The official scripts (lyh983012/SNN-ANN-Pretrain): SGD momentum 0.9, no weight decay, lr 0.1 at
# batch 256 (0.025 at our batch 64, linear scaling); pretraining at a constant lr for 100 epochs,
# fine-tuning with lr x0.3 at epochs 2, 4, 6, 8. The short CPU schedules (digits, fashion_mnist) use 0.05.
FINETUNE_MILESTONES = (2, 4, 6, 8)
LR = {
    "digits": 0.05,
    "cifar10": 0.025,
    "fashion_mnist": 0.05,
    "fashion_mnist_60k": 0.05,
    "fashion_mnist_full": 0.025,
    "imagenet": 0.1,
}  # imagenet: batch 256


def snn_model(**overrides) -> ml_collections.ConfigDict:
    """The paper's LIF SNN: decay 0.25, hard reset, V_th 0.5, rectangular surrogate, T = 6."""
    return models.model_config(
        name="resnet18",
        neuron="lif",
        time_steps=6,
        decay=0.25,
        v_threshold=0.5,
        reset="hard",
        surrogate="rectangular",
        surrogate_param=1.0,
        **overrides,
    )


def finetune_optim(dataset: str) -> ml_collections.ConfigDict:
    """Stage 2 (pipe-S, as the official train_finetune.py): SGD, lr x0.3 at epochs 2/4/6/8."""
    return config_lib.optim_config(
        lr=LR[dataset], weight_decay=0.0, schedule="multistep", milestones=FINETUNE_MILESTONES, gamma=0.3
    )


def pretrain_section(dataset: str) -> ml_collections.ConfigDict:
    """``config.pretrain``: stage 1 (the ANN twin) and the transfer; the official scripts' settings."""
    digits = dataset == "digits"
    return ml_collections.ConfigDict(
        dict(
            enabled=True,
            checkpoint="",  # workdir of a finished pretrain.py run; "" trains stage 1 here
            activation="sharpened",  # sharpened (official README) | relu
            load_optimizer_state=True,  # fine-tuning starts with the pretraining SGD momentum (official)
            freeze_loaded=False,  # train only what was not loaded (official pipe-D)
            sharpen_horizon_epochs=0,  # the "200" of a = min(e/200, 0.49); 0 = 2 x pretrain epochs
            bn_scale_init=0.5,  # BN gamma at init = V_th (tdBN), for the ANN as for the SNN
            reinit="",  # comma-separated modules NOT loaded into the SNN, e.g. "stem_conv"
            eval_transfer=True,  # test the SNN right after loading, before fine-tuning
            data=config_lib.data_config(name=""),  # "" = pretrain on config.data (pipe-S)
            optim=config_lib.optim_config(
                lr=LR.get(dataset, 0.025), weight_decay=0.0, schedule="constant", milestones=()
            ),
            train=config_lib.train_config(
                epochs=PRETRAIN_EPOCHS.get(dataset, 100), log_every_steps=10 if digits else 50
            ),
        )
    )


def parse_reinit(value: str) -> tuple[str, ...]:
    """``"stem_conv, stage0_block0/conv1"`` -> ``("stem_conv", "stage0_block0/conv1")``."""
    return tuple(p.strip().strip("/") for p in str(value).split(",") if p.strip())


def pretrain_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The single-stage config of stage 1: the ANN twin, ``pretrain.data`` (if named), optim and train."""
    return stages.sub_stage_config(
        config,
        model=models.ann_model_config(config.model),
        data=config.pretrain.data if config.pretrain.data.name else None,
        optim=config.pretrain.optim,
        train=config.pretrain.train,
        drop=("pretrain",),
    )


def pretrain_restore(config: ml_collections.ConfigDict) -> stages.Restore:
    return stages.Restore(
        config.pretrain.checkpoint,
        "config.pretrain.checkpoint",
        (PRETRAIN_STAGE,),
        "pretraining",
        "pass the --workdir of a finished `launch.py --config configs/pretrain.py` run, or leave it empty "
        "to pretrain here.",
    )


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Check the ``pretrain`` section and that ``config.model`` is the SNN (the shared sections are checked
    by ``config.validate``)."""
    p = cfg.pretrain
    if p.activation not in ACTIVATIONS:
        config_lib.fail("pretrain.activation", p.activation, f"choose one of {list(ACTIVATIONS)}")
    if float(p.bn_scale_init) <= 0:
        config_lib.fail("pretrain.bn_scale_init", p.bn_scale_init, "must be > 0 (V_th = 0.5 in the paper)")
    if float(p.sharpen_horizon_epochs) < 0:
        config_lib.fail(
            "pretrain.sharpen_horizon_epochs",
            p.sharpen_horizon_epochs,
            "must be >= 0 (0 = twice the pretraining epochs)",
        )
    if cfg.model.neuron == "relu":
        config_lib.fail(
            "model.neuron",
            cfg.model.neuron,
            "the fine-tuned model is the SNN; use 'lif' (the paper) "
            "or 'if' / 'plif'. The ANN twin is derived from it automatically.",
        )
    config_lib.validate_optim(p.optim, "pretrain.optim")
    config_lib.validate_train(p.train, "pretrain.train")
    if p.data.name:
        config_lib.validate_data(p.data, "pretrain.data")


def check_event_steps(config: ml_collections.ConfigDict, image_shape: tuple[int, ...], what: str) -> None:
    """Event frames ``[T, H, W, C]`` must have ``T = config.model.time_steps`` (checked once the data is loaded)."""
    if len(image_shape) == 4 and image_shape[0] != int(config.model.time_steps):
        raise ValueError(
            f"{what} has {image_shape[0]} frames per sample but config.model.time_steps="
            f"{config.model.time_steps}. Fix: set --config.data.options.time_steps={config.model.time_steps} "
            "(the event datasets' T) or change config.model.time_steps to match."
        )
