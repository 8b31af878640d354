"""The dataset registry: every loader by name, and :func:`load_dataset` (re-exported by :mod:`snnjax.data`).

Its own module so that :mod:`snnjax.data.from_config` reaches it without importing the package
``__init__`` that imports it (no import cycle).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

from snnjax.data.cifar import load_cifar10, load_cifar100
from snnjax.data.digits import load_digits
from snnjax.data.errors import InvalidDatasetOptionError, UnknownDatasetError
from snnjax.data.event_io import load_event_folder
from snnjax.data.events import load_cifar10_events, load_digits_events, load_fashion_mnist_events
from snnjax.data.idx import load_fashion_mnist, load_mnist
from snnjax.data.synthetic import load_synthetic
from snnjax.data.types import DatasetSplits

TFDS_PREFIX = "tfds:"

# Loaders that need no files get no data_dir/download; see _call_loader.
_LOADERS: dict[str, Callable[..., DatasetSplits]] = {
    "digits": load_digits,
    "synthetic": load_synthetic,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "fashion_mnist": load_fashion_mnist,
    "mnist": load_mnist,
    # Event (dynamic) data, uint8 [N, T, H, W, 2]: see snnjax.data.events / event_io.
    "digits_events": load_digits_events,
    "cifar10_events": load_cifar10_events,
    "fashion_mnist_events": load_fashion_mnist_events,
    "event_folder": load_event_folder,
}


def dataset_names() -> list[str]:
    """Valid `load_dataset` names (plus any "tfds:<name>")."""
    return [*_LOADERS, f"{TFDS_PREFIX}<name>"]


def _call_loader(
    name: str,
    loader: Callable[..., DatasetSplits],
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    options: dict[str, Any],
) -> DatasetSplits:
    params = inspect.signature(loader).parameters
    valid = [p for p in params if p not in ("data_dir", "download")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InvalidDatasetOptionError(
            f"dataset {name!r} has no option(s) {unknown}; valid options: {valid or 'none'}."
        )
    io_args = {"data_dir": data_dir, "download": download} if "data_dir" in params else {}
    return loader(**io_args, **options)


def load_dataset(
    name: str, *, data_dir: str | os.PathLike[str] | None = None, download: bool = True, **options: Any
) -> DatasetSplits:
    """Load a dataset's train and test splits into host memory.

    Args:
      name: "digits", "synthetic", "cifar10", "cifar100", "fashion_mnist", "mnist",
        "digits_events", "cifar10_events", "fashion_mnist_events", "event_folder" or
        "tfds:<tfds name>".
      data_dir: where the files are (meaning depends on the dataset; ignored by
        digits and synthetic).
      download: allow downloading/preparing missing files.
      **options: dataset-specific options, e.g. digits `size=32`, cifar100
        `label_type="coarse"`, synthetic `image_shape=(32, 32, 3)`, tfds
        `train_split=`, `test_split=`, `image_key=`, `label_key=`; event
        datasets `time_steps=` (T), digits_events/cifar10_events `threshold=`,
        event_folder `binary=`, `duration=`.

    Returns:
      DatasetSplits with uint8 [N, H, W, C] images and int32 [N] labels.

    Raises:
      UnknownDatasetError: `name` is not one of `dataset_names()`.
      InvalidDatasetOptionError: an option is unknown for this dataset or invalid.
      DatasetNotFoundError / DatasetCorruptError: files missing or wrong.
    """
    if isinstance(name, str) and name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX):
        from snnjax.data.tfds_source import load_tfds  # lazy: tfds and grain are slow to import

        return _call_loader(name, functools.partial(load_tfds, name[len(TFDS_PREFIX) :]), data_dir, download, options)
    loader = _LOADERS.get(name) if isinstance(name, str) else None
    if loader is None:
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}; valid names: {', '.join(dataset_names())} "
            f"(e.g. 'tfds:mnist'). Fix: pass one of them, or 'digits' to try offline."
        )
    return _call_loader(name, loader, data_dir, download, options)
