"""Dataset presets: the ``data`` section of each dataset every config file accepts, and :func:`apply`.

A preset of a ``configs/*.py`` file is this module's data section for its dataset, then its method's
table of everything else (width, T, epochs, schedule, ...): one table per method, in
``snnjax/methods/<method>/config.py`` (``PRESETS``). No epoch, width or learning rate lives here.

- ``cifar10`` / ``cifar100``: the data section's defaults (batch 64, crop 32 pad 4 + flip;
  :func:`snnjax.config.data_config`).
- ``digits``: the embedded offline dataset (scikit-learn's 8x8 handwritten digits): no horizontal
  flips (digits are not mirror-symmetric) and a 1-pixel crop padding (4 pixels would be half of an
  8x8 image).
- Fashion-MNIST / MNIST (28x28 grayscale, ``apt-get install dataset-fashion-mnist`` for the former):
  random crops with 2-pixel zero padding (the 4 pixels of CIFAR's 32x32 would shift the centred,
  smaller objects of these sets too far) and, for Fashion-MNIST only, horizontal flips (a mirrored
  shoe or shirt is the same class; a mirrored digit is not). Normalisation uses the training split's
  own mean/std. ``fashion_mnist`` / ``mnist`` train on a fixed stratified subset of 6,000 images (600
  per class, the same for every seed and arm: the IDSNN paper's "limited training resources" regime,
  sized for a 2-core CPU); ``*_60k`` and ``*_full`` on all 60,000. The whole 10,000-image test set is
  evaluated after every epoch.
- ``imagenet``: ImageNet-1k (tfds imagenet2012 in array_record format, streamed; docs/running.md's pod
  section): batch 256, 224 random-resized crops + flips on the host, resize 256 / center 224 for
  test, ImageNet channel statistics; its labelled test split is ``validation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections

DATASETS = (
    "cifar10",
    "cifar100",
    "digits",
    "fashion_mnist",
    "fashion_mnist_60k",
    "fashion_mnist_full",
    "mnist",
    "mnist_60k",
    "mnist_full",
    "imagenet",
)

_28 = dict(crop_padding=2, batch_size=64)
DATA: dict[str, dict[str, Any]] = {
    "cifar10": dict(name="cifar10"),
    "cifar100": dict(name="cifar100"),
    "digits": dict(name="digits", crop_padding=1, flip=False, batch_size=64),
    "fashion_mnist": dict(name="fashion_mnist", **_28, flip=True, train_subset=6000),
    "fashion_mnist_60k": dict(name="fashion_mnist", **_28, flip=True, train_subset=0),
    "fashion_mnist_full": dict(name="fashion_mnist", **_28, flip=True, train_subset=0),
    "mnist": dict(name="mnist", **_28, flip=False, train_subset=6000),
    "mnist_60k": dict(name="mnist", **_28, flip=False, train_subset=0),
    "mnist_full": dict(name="mnist", **_28, flip=False, train_subset=0),
    "imagenet": dict(
        name="records:imagenet2012",  # with --config.data.data_dir=<tfds data_dir>, or records:<dataset dir>
        image_size=224,
        crop_padding=0,
        flip=True,
        batch_size=256,
        eval_batch_size=1024,
        workers=16,  # decoding processes per host (a TPU VM host has 100+ cores)
        worker_processes=True,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        options={"test_split": "validation"},  # imagenet2012's labelled test split
    ),
}


def apply(cfg: ml_collections.ConfigDict, values: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """Set every dotted key of ``values`` (``{"optim.milestones": (3, 5)}``) in ``cfg``, in order (a
    dict value becomes a fresh ``ConfigDict``, so no two configs share a section); returns ``cfg``."""
    for path, value in values.items():
        *sections, leaf = path.split(".")
        node = cfg
        for section in sections:
            node = node[section]
        node[leaf] = ml_collections.ConfigDict(dict(value)) if isinstance(value, Mapping) else value
    return cfg


def apply_data(cfg: ml_collections.ConfigDict, dataset: str) -> None:
    """Set ``cfg.data`` to dataset preset ``dataset`` in place (nothing when ``cfg`` has no ``data``
    section, as the IDSNN ``teacher`` section)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset preset {dataset!r}; choose one of {list(DATASETS)}")
    if "data" in cfg:
        apply(cfg.data, DATA[dataset])
