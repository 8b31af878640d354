"""The dataset a run's ``config.data`` names, with the input normalisation it configures.

The one place a run's data is loaded and its normalisation chosen: training (every pipeline) and
``python -m snnjax.analysis`` call :func:`load_from_config`, so a run is analysed on the inputs it
was trained on.

Normalisation, first match wins:
1. ``data.mean`` / ``data.std`` set (one float per channel, on the [0, 1] pixel scale): these
   constants (SNN2ANN's official CIFAR values);
2. ``data.normalization``: ``dataset`` (the dataset's own per-channel statistics, the default),
   ``symmetric`` (0.5 / 0.5: pixels to [-1, 1]) or ``unit`` (0 / 1: pixels to [0, 1]).
"""

from __future__ import annotations

import dataclasses

import ml_collections

from snnjax.data.loaders import load_dataset
from snnjax.data.stats import NORMALIZATIONS
from snnjax.data.subset import take_train_subset
from snnjax.data.types import DatasetSplits


def data_config(**overrides) -> ml_collections.ConfigDict:
    """The ``config.data`` section with its library defaults (``snnjax.config.base_config`` uses it;
    the engine reads it to know what a key missing from an older checkpoint meant)."""
    cfg = ml_collections.ConfigDict(
        dict(
            name="cifar10",  # digits | synthetic | cifar10 | cifar100 | tfds:<name>
            data_dir="",  # "" = default cache (~/.cache/snnjax/datasets or $SNNJAX_DATA_DIR)
            download=True,
            options=ml_collections.ConfigDict(),  # dataset-specific, e.g. digits: size
            batch_size=64,  # global batch, split over all devices
            eval_batch_size=512,
            crop_padding=4,  # random crop with zero padding; 0 disables
            flip=True,  # random horizontal flip
            # Input normalisation (snnjax.data.from_config): per-channel constants on the [0, 1] scale when
            # mean/std are set, else by name: dataset (its own statistics) | symmetric ([-1, 1]) | unit ([0, 1]).
            normalization="dataset",
            mean=(),
            std=(),
        )
    )
    # Streaming from record files (snnjax.train.streamed): None (default) streams record sets
    # (name "records:<dir or tfds name>") only; True also streams an in-memory dataset's records.
    cfg.streaming = ml_collections.config_dict.placeholder(bool)
    cfg.records_dir = ""  # streaming=True on an in-memory dataset: its records ("" = cache folder)
    cfg.image_size = 0  # >0: host random-resized crops (train) / center crops (test) of this side
    cfg.workers = 2  # grain worker threads (or processes) decoding streamed images
    cfg.worker_processes = False
    cfg.update(overrides)
    return cfg


def load_raw(data_cfg: ml_collections.ConfigDict) -> DatasetSplits:
    """The dataset named by ``data_cfg`` (:func:`snnjax.data.load_dataset`), cut to ``data.train_subset``
    training examples when that is > 0; its ``mean`` / ``std`` are the dataset's own statistics."""
    from snnjax.data import from_records

    if from_records.enabled(data_cfg):  # a record set, streamed: never loaded whole
        return from_records.load(data_cfg)

    splits = load_dataset(
        data_cfg.name, data_dir=data_cfg.data_dir or None, download=bool(data_cfg.download), **dict(data_cfg.options)
    )
    return take_train_subset(splits, int(data_cfg.get("train_subset", 0)))


def normalization_stats(
    data_cfg: ml_collections.ConfigDict, channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Per-channel ``(mean, std)`` that ``data_cfg`` asks for, or None for the dataset's own statistics.

    Raises ``ValueError`` naming the key when ``mean`` / ``std`` do not have ``channels`` values (std > 0)
    or ``normalization`` is not a known name.
    """
    mean, std = tuple(data_cfg.get("mean", ()) or ()), tuple(data_cfg.get("std", ()) or ())
    if mean or std:
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ValueError(
                f"config.data.mean={mean} / std={std} need {channels} values each (std > 0) for this dataset; "
                "set both to () to use data.normalization"
            )
        return tuple(float(m) for m in mean), tuple(float(s) for s in std)
    name = data_cfg.get("normalization", "dataset")
    if name not in NORMALIZATIONS:
        raise ValueError(
            f"config.data.normalization={name!r} is not valid: choose one of {list(NORMALIZATIONS)} "
            "(symmetric maps pixels to [-1, 1], unit to [0, 1])"
        )
    stats = NORMALIZATIONS[name]
    return None if stats is None else ((stats[0],) * channels, (stats[1],) * channels)


def normalize_splits(splits: DatasetSplits, data_cfg: ml_collections.ConfigDict) -> DatasetSplits:
    """``splits`` whose ``mean`` / ``std`` are the ones ``data_cfg`` configures (images stay uint8)."""
    stats = normalization_stats(data_cfg, splits.image_shape[-1])
    if stats is None:
        return splits
    return dataclasses.replace(splits, mean=stats[0], std=stats[1])


def load_from_config(data_cfg: ml_collections.ConfigDict) -> DatasetSplits:
    """:func:`load_raw` then :func:`normalize_splits`: the inputs a run with ``config.data`` trains on."""
    return normalize_splits(load_raw(data_cfg), data_cfg)
