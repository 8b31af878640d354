"""Pretraining-as-a-bridge config: the ``pretrain`` section's defaults, the preset tables of
``configs/pretrain.py``, the stage-1 config, validation.

Stage 1 trains the ANN twin of ``config.model`` (same topology and parameter names, ReLU, T = 1,
BN gamma initialised to ``pretrain.bn_scale_init`` = V_th 0.5) on ``pretrain.data`` (empty name:
``config.data``) with ``pretrain.optim`` / ``pretrain.train``; stage 2 copies its params and BN
statistics into the LIF SNN (``pretrain.reinit`` lists the modules left as initialised) and
fine-tunes with ``optim`` / ``train``.

Fine-tuning (pipe-S, and pipe-D ``full``) as the official train_finetune.py: 50 epochs (digits and
the CPU presets: 10 / 6), SGD momentum 0.9, lr x0.3 at epochs 2/4/6/8, momentum buffers loaded from
the pretraining optimizer (``pretrain.load_optimizer_state``; lr and schedule start fresh). pipe-D
``official`` (Exp2 example_cifar10_res_imgnet+WU.py): every loaded tensor frozen, a new stem conv +
BN and a new FC trained with Adam 1e-3, wd 1e-4, 60 epochs, x0.1 at 20/30/40.
"""

from __future__ import annotations

import ml_collections

from snnjax import config as config_lib
from snnjax import models, presets
from snnjax.train import stages

ACTIVATIONS = ("sharpened", "relu")  # the first is the default (the official README's WSresnet18)
PRETRAIN_STAGE, FINETUNE_STAGE = "pretrain", "finetune"

# The preset groups of configs/pretrain.py (the first of each group is its default).
PIPES = ("pipe_s", "pipe_d")
DATASETS = (
    "digits",
    "cifar10",
    "fashion_mnist",
    "fashion_mnist_60k",
    "fashion_mnist_full",
    "imagenet",
)  # imagenet: pipe-S only
ARMS = ("pretrained", "scratch")
MODES = ("official", "full")
# The event version of each dataset, which pipe-D fine-tunes on.
EVENT_DATA = {
    "digits": "digits_events",
    "cifar10": "cifar10_events",
    "fashion_mnist": "fashion_mnist_events",
    "fashion_mnist_60k": "fashion_mnist_events",
    "fashion_mnist_full": "fashion_mnist_events",
}
# The official scripts (lyh983012/SNN-ANN-Pretrain): SGD momentum 0.9, no weight decay, lr 0.1 at
# batch 256 (0.025 at our batch 64, linear scaling); pretraining at a constant lr for 100 epochs,
# fine-tuning with lr x0.3 at epochs 2, 4, 6, 8.
FINETUNE_MILESTONES = (2, 4, 6, 8)

# Per dataset preset, on top of snnjax.presets.DATA (dotted keys, applied in order): the SNN's width,
# T, logging and evaluation batch; stage 1's (``pretrain.*``: the ANN twin) and stage 2's
# (fine-tuning, pipe-S and pipe-D ``full``) lr and epochs. The short CPU schedules (digits,
# fashion_mnist*) use lr 0.05.
PRESETS = {
    "digits": {
        "model.width": 16,
        "train.log_every_steps": 10,
        "train.epochs": 10,
        "optim.lr": 0.05,
        "pretrain.optim.lr": 0.05,
        "pretrain.train.epochs": 20,
        "pretrain.train.log_every_steps": 10,
    },
    "cifar10": {
        "train.epochs": 50,
        "optim.lr": 0.025,
        "pretrain.optim.lr": 0.025,
        "pretrain.train.epochs": 100,
        "pretrain.train.log_every_steps": 50,
    },
    # 2-core CPU (ResNet18 width 16, T = 4 (paper: 6), the 6,000-image subset; docs/pretrain.md): ~4-7 min
    # per 6-epoch arm (IDSNN's measurement of the same Spiking ResNet18 width 16, T = 4).
    "fashion_mnist": {
        "model.width": 16,
        "train.log_every_steps": 20,
        "train.epochs": 6,
        "optim.lr": 0.05,
        "data.eval_batch_size": 500,
        "pretrain.optim.lr": 0.05,
        "pretrain.train.epochs": 6,
        "pretrain.train.log_every_steps": 20,
        "model.time_steps": 4,
    },
    # All 60,000 images on the 2-core CPU (docs/pretrain.md "60k"): the ANN 5 epochs; the SNN 10 epochs
    # (the official fine-tuning's lr cuts at 2/4/6/8 all fall inside), the cap of the scratch SNN too.
    "fashion_mnist_60k": {
        "model.width": 16,
        "train.log_every_steps": 50,
        "train.epochs": 10,
        "optim.lr": 0.05,
        "data.eval_batch_size": 500,
        "pretrain.optim.lr": 0.05,
        "pretrain.train.epochs": 5,
        "pretrain.train.log_every_steps": 50,
        "model.time_steps": 4,
    },
    # GPU: width 64 on all 60,000 images, the official epochs.
    "fashion_mnist_full": {
        "model.width": 64,
        "train.log_every_steps": 100,
        "train.epochs": 50,
        "optim.lr": 0.025,
        "data.eval_batch_size": 500,
        "pretrain.optim.lr": 0.025,
        "pretrain.train.epochs": 100,
        "pretrain.train.log_every_steps": 100,
    },
    # Streamed imagenet2012 records (snnjax.presets.DATA), 224 crops, bf16 (on a CPU pass
    # --config.model.dtype=float32); the official ImageNet ResNets define a max-pool but never call it.
    "imagenet": {
        "model.stem": "imagenet_nopool",
        "model.dtype": "bfloat16",
        "train.log_every_steps": 100,
        "train.epochs": 50,
        "optim.lr": 0.1,  # batch 256
        "pretrain.optim.lr": 0.1,
        "pretrain.train.epochs": 100,
        "pretrain.train.log_every_steps": 100,
    },
}
# pipe_d,official (Exp2 example_cifar10_res_imgnet+WU.py): new conv1 (+ its norm) and new FC, all
# else frozen, trained with a fresh Adam (:func:`pipe_d_official_optim`) for 60 epochs, x0.1 at
# 20/30/40; the CPU presets the same shape in 6 epochs.
PIPE_D_OFFICIAL = {
    "pretrain.reinit": "stem_conv,stem_bn,head",
    "pretrain.freeze_loaded": True,
    "pretrain.load_optimizer_state": False,
}
_PIPE_D_CPU = {"train.epochs": 6, "optim.milestones": (2, 3, 4)}
PIPE_D_OFFICIAL_SCHEDULE = {
    "digits": _PIPE_D_CPU,
    "cifar10": {"train.epochs": 60},
    "fashion_mnist": _PIPE_D_CPU,
    "fashion_mnist_60k": _PIPE_D_CPU,
    "fashion_mnist_full": {"train.epochs": 60},
}


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


def finetune_optim(dataset: str | None = None) -> ml_collections.ConfigDict:
    """Stage 2 (pipe-S, as the official train_finetune.py): SGD, lr x0.3 at epochs 2/4/6/8; the lr of
    ``dataset``'s preset (default: 0.025, the official lr at batch 64)."""
    cfg = config_lib.optim_config(
        lr=0.025, weight_decay=0.0, schedule="multistep", milestones=FINETUNE_MILESTONES, gamma=0.3
    )
    return presets.apply(cfg, _section_values(dataset, "optim"))


def pipe_d_official_optim() -> ml_collections.ConfigDict:
    """pipe-D ``official``: a fresh Adam 1e-3, wd 1e-4, x0.1 at epochs 20/30/40."""
    return config_lib.optim_config(
        name="adam", lr=1e-3, weight_decay=1e-4, schedule="multistep", milestones=(20, 30, 40), gamma=0.1
    )


def _section_values(dataset: str | None, section: str) -> dict:
    """The keys under ``section.`` of ``dataset``'s row of :data:`PRESETS`, relative to the section."""
    prefix = section + "."
    row = PRESETS[dataset] if dataset is not None else {}
    return {k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)}


def apply_preset(
    cfg: ml_collections.ConfigDict, *, pipe: str, dataset: str, arm: str, activation: str, mode: str
) -> ml_collections.ConfigDict:
    """The presets of ``configs/pretrain.py`` in place (and return ``cfg``, which has the ``pretrain``
    section): the arm and activation, the data section and :data:`PRESETS` of ``dataset``; pipe-D
    moves the fine-tuning to the dataset's event version (and ``official`` mode to
    :data:`PIPE_D_OFFICIAL`)."""
    cfg.pretrain.enabled = arm == "pretrained"
    cfg.pretrain.activation = activation
    presets.apply_data(cfg, dataset)
    presets.apply(cfg, PRESETS[dataset])
    if pipe != "pipe_d":
        return cfg
    if dataset not in EVENT_DATA:
        config_lib.fail("dataset", dataset, "pipe_d needs an event version of the data; use pipe_s,imagenet")
    # The static source keeps the dataset's own section; the SNN fine-tunes on its event version.
    cfg.pretrain.data = ml_collections.ConfigDict(cfg.data.to_dict())
    cfg.data.name = EVENT_DATA[dataset]
    cfg.data.options = ml_collections.ConfigDict()
    cfg.data.options.time_steps = cfg.model.get_ref("time_steps")  # frames per sample = T
    cfg.pretrain.reinit = "stem_conv"  # the input has 2 polarity channels
    if mode == "official":
        presets.apply(cfg, PIPE_D_OFFICIAL)
        cfg.optim = pipe_d_official_optim()
        presets.apply(cfg, PIPE_D_OFFICIAL_SCHEDULE[dataset])
    return cfg


def pretrain_section(dataset: str | None = None) -> ml_collections.ConfigDict:
    """``config.pretrain``: stage 1 (the ANN twin) and the transfer; the official scripts' settings
    (with ``dataset``: the ``pretrain.*`` values of its preset, :data:`PRESETS`)."""
    cfg = ml_collections.ConfigDict(
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
            optim=config_lib.optim_config(lr=0.025, weight_decay=0.0, schedule="constant", milestones=()),
            train=config_lib.train_config(epochs=100, log_every_steps=50),
        )
    )
    return presets.apply(cfg, _section_values(dataset, "pretrain"))


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
