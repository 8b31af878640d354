"""Datasets for snnjax: loaders to host memory, device placement, on-device input pipeline.

    splits = load_dataset("digits")                 # offline, real data
    splits = load_dataset("cifar10", data_dir=...)  # official archive, no TensorFlow
    splits = load_dataset("fashion_mnist")          # IDX files (apt-get install dataset-fashion-mnist)
    splits = load_dataset("tfds:mnist")             # any array_record tfds dataset

Every loader returns `DatasetSplits` with uint8 [N, H, W, C] images (event
datasets: uint8 [N, T, H, W, 2] polarity frames, `snnjax.data.events`); see
`snnjax.data.batches` for batching/augmentation inside the jitted step, and
`snnjax.data.write_records` / `snnjax.data.stream_source` / `snnjax.data.from_records` for datasets
streamed from ArrayRecord files (too large for memory).
"""

from __future__ import annotations

from snnjax.data.batches import (
    EvalBatch,
    batch_indices,
    epoch_permutation,
    eval_batch_indices,
    eval_batches,
    make_eval_batch,
    make_train_batch,
    normalize,
    num_eval_batches,
    random_crop_flip,
    steps_per_epoch,
)
from snnjax.data.errors import (
    DatasetCorruptError,
    DatasetError,
    DatasetNotFoundError,
    InvalidDatasetOptionError,
    UnknownDatasetError,
)
from snnjax.data.from_config import load_from_config, load_raw, normalize_splits
from snnjax.data.loaders import TFDS_PREFIX, dataset_names, load_dataset  # noqa: F401  (TFDS_PREFIX: as before)
from snnjax.data.placement import dataset_bytes, put_dataset
from snnjax.data.subset import stratified_subset, take_train_subset
from snnjax.data.types import ArrayDataset, DatasetSplits

__all__ = [
    "ArrayDataset",
    "DatasetCorruptError",
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetSplits",
    "EvalBatch",
    "InvalidDatasetOptionError",
    "UnknownDatasetError",
    "batch_indices",
    "dataset_bytes",
    "dataset_names",
    "epoch_permutation",
    "eval_batch_indices",
    "eval_batches",
    "load_dataset",
    "load_from_config",
    "load_raw",
    "normalize_splits",
    "make_eval_batch",
    "make_train_batch",
    "normalize",
    "num_eval_batches",
    "put_dataset",
    "random_crop_flip",
    "steps_per_epoch",
    "stratified_subset",
    "take_train_subset",
]
