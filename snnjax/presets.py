"""Dataset presets shared by the config files (``configs/*.py``).

``cifar10`` / ``cifar100`` carry the official IDSNN hyperparameters (batch 64, SGD lr 0.05,
200 epochs, x0.1 at 60/120/160, crop 32 pad 4 + flip, T = 4). ``digits`` is the embedded offline
dataset (scikit-learn's 8x8 handwritten digits): narrower networks and a short schedule so a whole
pipeline runs in minutes on a 2-core CPU; no horizontal flips (digits are not mirror-symmetric)
and a 1-pixel crop padding (4 pixels would be half of an 8x8 image).
"""

from __future__ import annotations

import ml_collections

from snnjax import models

DATASETS = ("cifar10", "cifar100", "digits")

# Offline digits runs: width 16 (1/16 of the paper's FLOPs), 20 epochs.
DIGITS_WIDTH = 16
DIGITS_EPOCHS = 20


def teacher_model(**overrides) -> ml_collections.ConfigDict:
    """The ANN teacher: ResNet34 with ReLU, T = 1."""
    return models.model_config(name="resnet34", neuron="relu", time_steps=1, **overrides)


def apply_dataset(cfg: ml_collections.ConfigDict, dataset: str) -> None:
    """Set data/model/optim/train for ``dataset`` in place (``cfg`` may lack a ``data`` section, e.g.
    ``config.teacher``)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset preset {dataset!r}; choose one of {list(DATASETS)}")
    if dataset in ("cifar10", "cifar100"):
        if "data" in cfg:
            cfg.data.name = dataset
        return
    if "data" in cfg:
        cfg.data.name = "digits"
        cfg.data.crop_padding = 1
        cfg.data.flip = False
        cfg.data.batch_size = 64
    cfg.model.width = DIGITS_WIDTH
    cfg.train.epochs = DIGITS_EPOCHS
    cfg.train.log_every_steps = 10
    cfg.optim.milestones = (10, 15)
    cfg.optim.step_epochs = 5
