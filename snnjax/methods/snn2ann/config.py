"""SNN2ANN config: the ``arm`` key (``snn2ann`` | ``bptt``) and its validation (the model section is
checked by its family, :func:`snnjax.methods.snn2ann.models.validate`)."""

from __future__ import annotations

import ml_collections

from snnjax import config as config_lib
from snnjax.methods.snn2ann import models

ARMS = models.ARMS

# The official CIFAR setup (paper / run.py): Adam lr 1e-3, weight decay 5e-4, batch 512, 200 epochs,
# lr x0.1 at epochs 100/150/175; also the GPU Fashion-MNIST preset's.
OFFICIAL_BATCH = 512
OFFICIAL_EPOCHS = 200
OFFICIAL_MILESTONES = (100, 150, 175)
# The offline digits preset (width and epochs: snnjax.presets): a 4-conv net, 8x8 -> 4x4 -> 2x2.
DIGITS_LAYERS = "1,1,M,2,2,M"
# fashion_mnist_60k: T_b of the BPTT baseline and the epoch cap (one cosine decay over it).
FASHION_MNIST_60K_T = 8
FASHION_MNIST_60K_EPOCHS = 8


def official_optim() -> ml_collections.ConfigDict:
    return config_lib.optim_config(
        name="adam", lr=1e-3, weight_decay=5e-4, schedule="multistep", milestones=OFFICIAL_MILESTONES, gamma=0.1
    )


def apply_dataset(cfg: ml_collections.ConfigDict, dataset: str, arch: str) -> None:
    """SNN2ANN's settings for ``dataset`` on top of :func:`snnjax.presets.apply_dataset` (in place).

    ``arch`` is the preset's ``vgg13`` | ``resnet17``. CIFAR and ``fashion_mnist_full``: the official
    batch/schedule (CIFAR: also the official normalisation constants); ``fashion_mnist``: the 2-core CPU
    net (4 convs on the 6,000-image subset); ``digits``: the offline net.
    """
    if dataset in ("cifar10", "cifar100", "fashion_mnist_full"):
        cfg.data.batch_size = OFFICIAL_BATCH
        cfg.train.epochs = OFFICIAL_EPOCHS
        cfg.optim.milestones = OFFICIAL_MILESTONES
    if dataset in ("cifar10", "cifar100"):
        cfg.data.mean = models.OFFICIAL_MEAN  # official run.py constants (not the usual CIFAR std)
        cfg.data.std = models.OFFICIAL_STD
    if dataset in ("fashion_mnist", "fashion_mnist_60k", "fashion_mnist_full"):
        cfg.data.eval_batch_size = 500
    if dataset == "fashion_mnist_60k":
        # All 60,000 images on the 2-core CPU (docs/snn2ann.md, "60k"): the CPU net below at T = 8 (the
        # BPTT arm's T_b; the SNN2ANN arms pass --config.model.time_steps=5 or 8), Adam 1e-3 with one
        # cosine decay over an epoch cap instead of 200 epochs with steps at 100/150/175.
        cfg.model.time_steps = FASHION_MNIST_60K_T
        cfg.train.epochs = FASHION_MNIST_60K_EPOCHS
    if dataset in ("fashion_mnist", "fashion_mnist_60k") and arch == "vgg13":
        cfg.model.layers = DIGITS_LAYERS  # 28x28 -> 14x14 -> 7x7, 4 convs
        cfg.model.dropout = (0.25, 0.25, 0.0)
    if dataset == "digits" and arch == "vgg13":
        cfg.model.layers = DIGITS_LAYERS
        cfg.model.dropout = (0.0,)


def validate(cfg: ml_collections.ConfigDict) -> None:
    """``arm`` is known and matches ``model.name`` (``<arm>_<arch>``); no teacher."""
    if cfg.arm not in ARMS:
        config_lib.fail("arm", cfg.arm, f"choose one of {list(ARMS)}")
    if cfg.model.name not in models.NAMES or models.split_name(cfg.model.name)[0] != cfg.arm:
        names = [n for n in models.NAMES if models.split_name(n)[0] == cfg.arm]
        config_lib.fail(
            "model.name",
            cfg.model.name,
            f"config.arm={cfg.arm!r} trains one of {names} (the presets "
            "set both; set --config.model.name too when overriding config.arm)",
        )
    if cfg.kd.enabled:
        config_lib.fail("kd.enabled", cfg.kd.enabled, "SNN2ANN trains without a teacher; set it to False")
