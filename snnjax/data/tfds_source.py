"""tfds-prepared datasets read without TensorFlow, via `tfds.data_source` (random access).

tensorflow-datasets decodes array_record (or parquet) files with NumPy and
PIL/OpenCV alone, so any dataset prepared in such a format (on this machine or
copied from one that has TensorFlow) can be used here. Preparing most stock
datasets does need TensorFlow; errors say how to prepare and where to copy.

tfds and grain are imported lazily: they take about 1.5 s to import and are
not needed for `digits`, `synthetic` or CIFAR.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from snnjax.data.errors import DatasetNotFoundError, InvalidDatasetOptionError
from snnjax.data.records import to_example
from snnjax.data.stats import channel_stats
from snnjax.data.types import ArrayDataset, DatasetSplits

_READ_CHUNK = 1024  # records decoded per grain element (one thread decodes one chunk)
_READ_THREADS = 8  # image decoding (PIL/OpenCV) releases the GIL, so threads help


def _prepare_hint(name: str, data_dir: str | os.PathLike[str] | None) -> str:
    target = data_dir if data_dir is not None else "~/tensorflow_datasets"
    return (
        f"Fix: prepare it in array_record format where TensorFlow is installed, e.g. "
        f"`pip install tensorflow tensorflow-datasets && tfds build {name} --file_format=array_record "
        f"--data_dir={target}` (or copy an already prepared {name}/ folder into {target}); "
        f"or use the digits preset to try offline."
    )


def open_builder(name: str, *, data_dir: str | os.PathLike[str] | None, download: bool) -> Any:
    """Return a prepared tfds builder for `name` ("mnist", "mnist:3.0.1", "foo/config").

    Prepares it (array_record format) when it is missing and `download` is True.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError as e:
        raise DatasetNotFoundError(
            f"tfds has no dataset named {name!r} (data_dir={data_dir}). Fix: check the name against "
            f"`tfds.list_builders()`, or import the module that defines your builder first."
        ) from e
    if builder.is_prepared():
        return builder
    if not download:
        raise DatasetNotFoundError(
            f"tfds dataset {name!r} is not prepared under data_dir={data_dir} (looked in "
            f"{builder.data_dir}) and download=False. {_prepare_hint(name, data_dir)}"
        )
    try:
        builder.download_and_prepare(file_format="array_record")
    except Exception as e:  # tfds raises anything from ImportError (no TF) to network errors
        raise DatasetNotFoundError(
            f"tfds could not prepare {name!r} in data_dir={data_dir} ({type(e).__name__}: {e}). "
            f"{_prepare_hint(name, data_dir)}"
        ) from e
    return builder


def open_split(builder: Any, split: str, *, data_dir: str | os.PathLike[str] | None = None) -> Sequence[Any]:
    """Random-access source of one split (`len`, `source[i]` -> decoded record dict)."""
    name = builder.info.name
    try:
        return builder.as_data_source(split=split)
    except NotImplementedError as e:
        # Prepared in a sequential format (tfrecord): no random access possible.
        raise DatasetNotFoundError(
            f"tfds dataset {name!r} in {builder.data_dir} is not in a random-access format "
            f"(array_record/parquet). {_prepare_hint(name, data_dir)}"
        ) from e
    except (KeyError, ValueError) as e:
        raise InvalidDatasetOptionError(
            f"tfds dataset {name!r} has no split {split!r} ({e}); available splits: "
            f"{sorted(builder.info.splits)}. Fix: pass train_split=... / test_split=..."
        ) from e


def read_all(source: Sequence[Any], *, image_key: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode every record of a split into (uint8 [N, H, W, C], int32 [N]), in source order."""
    import grain

    if len(source) == 0:
        raise DatasetNotFoundError(f"tfds source {source!r} is empty; it needs at least one record.")
    chunks = (
        grain.MapDataset.source(source)
        .map(functools.partial(to_example, image_key=image_key, label_key=label_key))
        .batch(_READ_CHUNK)
        .to_iter_dataset(grain.ReadOptions(num_threads=_READ_THREADS, prefetch_buffer_size=2 * _READ_THREADS))
    )
    batches = list(chunks)
    images = np.concatenate([b["image"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches]).astype(np.int32)
    return images, labels


def num_classes_of(builder: Any, label_key: str, *labels: np.ndarray) -> int:
    """ClassLabel's num_classes if the feature declares it, else max label + 1."""
    # FeaturesDict supports `in` and [] but has no .get().
    feature = builder.info.features[label_key] if label_key in builder.info.features else None  # noqa: SIM401
    declared = getattr(feature, "num_classes", None)
    if declared:
        return int(declared)
    return int(max(int(y.max()) for y in labels)) + 1


def load_tfds(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    train_split: str = "train",
    test_split: str = "test",
    image_key: str = "image",
    label_key: str = "label",
) -> DatasetSplits:
    """Read a tfds dataset fully into host memory (for datasets that fit there).

    Args:
      name: tfds name, optionally with config/version ("mnist", "mnist:3.0.1").
      data_dir: tfds data directory; None means tfds' default (~/tensorflow_datasets).
      download: let tfds download and prepare the dataset when it is missing.
      train_split, test_split: tfds split specs, slicing allowed ("train[:90%]").
      image_key, label_key: record entries holding the image and the class id.

    Returns:
      DatasetSplits "tfds:<name>" with uint8 [N, H, W, C] images and the train
      split's per-channel mean/std on the [0, 1] scale.
    """
    builder = open_builder(name, data_dir=data_dir, download=download)
    train_images, train_labels = read_all(
        open_split(builder, train_split, data_dir=data_dir), image_key=image_key, label_key=label_key
    )
    test_images, test_labels = read_all(
        open_split(builder, test_split, data_dir=data_dir), image_key=image_key, label_key=label_key
    )
    num_classes = num_classes_of(builder, label_key, train_labels, test_labels)
    train = ArrayDataset(train_images, train_labels, num_classes)
    test = ArrayDataset(test_images, test_labels, num_classes)
    mean, std = channel_stats(train.images)
    return DatasetSplits(f"tfds:{name}", train, test, mean, std)
