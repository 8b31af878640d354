"""Which ``config.data`` sections stream from record files, and the record set they name.

``data.name="records:<dir or tfds name>"`` always streams (record sets are never loaded whole); an
in-memory dataset name with ``data.streaming=True`` streams its records from ``data.records_dir``
(default ``$SNNJAX_DATA_DIR/records/<name>`` or ``~/.cache/snnjax/records/<name>``), which a
single-process run writes once when missing (:func:`snnjax.data.write_records.export_dataset`).
The device side (batches, step, evaluator) is :mod:`snnjax.train.streamed`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import ml_collections

from snnjax.data.errors import InvalidDatasetOptionError
from snnjax.data.stream_source import RecordSet, open_records

RECORDS_PREFIX = "records:"
RECORD_OPTIONS = ("train_split", "test_split", "image_key", "label_key", "channels")


def enabled(data_cfg: ml_collections.ConfigDict) -> bool:
    """Whether ``config.data`` streams: record sets always, other datasets when ``data.streaming`` is True."""
    streaming = data_cfg.get("streaming", None)
    if str(data_cfg.name).startswith(RECORDS_PREFIX):
        if streaming is False:
            raise InvalidDatasetOptionError(
                f"config.data.name={data_cfg.name!r} is a record set, which is always streamed, but "
                "config.data.streaming=False. Fix: drop the override (or load an in-memory dataset by name)."
            )
        return True
    return bool(streaming)


def records_location(data_cfg: ml_collections.ConfigDict) -> tuple[str, str | None]:
    """(dataset directory or tfds name, tfds data_dir) of the records ``config.data`` streams."""
    name = str(data_cfg.name)
    if name.startswith(RECORDS_PREFIX):
        return name[len(RECORDS_PREFIX) :], data_cfg.data_dir or None
    if data_cfg.get("records_dir", ""):
        return str(data_cfg.records_dir), None
    root = os.environ.get("SNNJAX_DATA_DIR") or os.path.expanduser("~/.cache/snnjax")
    return os.path.join(root, "records", name), None


def _export_if_missing(data_cfg: ml_collections.ConfigDict, directory: str) -> None:
    from snnjax.data.write_records import export_dataset

    if os.path.isdir(directory) or str(data_cfg.name).startswith(RECORDS_PREFIX):
        return
    hint = f"python -m snnjax.data.write_records --dataset {data_cfg.name} --out {directory}"
    if dict(data_cfg.options):
        raise InvalidDatasetOptionError(
            f"config.data.streaming=True cannot export {data_cfg.name!r} with options {dict(data_cfg.options)}. "
            f"Fix: write its records yourself ({hint}, then load_dataset options there) and set "
            "config.data.name=records:<that dir>."
        )
    import jax

    if jax.process_count() > 1:
        raise InvalidDatasetOptionError(
            f"no records of {data_cfg.name!r} at {directory} (config.data.records_dir). Fix: write them once "
            f"before a multi-process run: {hint}"
        )
    print(f"[data] writing {data_cfg.name} as records to {directory} (once)", file=sys.stderr)
    export_dataset(str(data_cfg.name), directory, data_dir=data_cfg.data_dir or None, progress=False)


def load(data_cfg: ml_collections.ConfigDict) -> RecordSet:
    """The record set ``config.data`` streams (writing an in-memory dataset's records first if needed)."""
    dataset, data_dir = records_location(data_cfg)
    _export_if_missing(data_cfg, dataset)
    options = dict(data_cfg.options) if str(data_cfg.name).startswith(RECORDS_PREFIX) else {}
    unknown = sorted(set(options) - set(RECORD_OPTIONS))
    if unknown:
        raise InvalidDatasetOptionError(
            f"record sets have no option(s) {unknown} (config.data.options); valid: {list(RECORD_OPTIONS)}."
        )
    return open_records(
        dataset,
        data_dir=data_dir,
        image_size=int(data_cfg.get("image_size", 0)),
        flip=bool(data_cfg.flip),
        workers=int(data_cfg.get("workers", 2)),
        worker_processes=bool(data_cfg.get("worker_processes", False)),
        train_subset=int(data_cfg.get("train_subset", 0)),
        # Configured constants (data.mean/std, data.normalization) replace the dataset's statistics in
        # data.from_config.normalize_splits: then skip sampling them (2,048 decodes per process).
        use_dataset_stats=not (data_cfg.get("mean", ()) or data_cfg.get("normalization", "dataset") != "dataset"),
        **options,
    )


def is_streamed(splits: Any) -> bool:
    """True for a record set (:func:`load`), False for in-memory ``DatasetSplits``."""
    return isinstance(splits, RecordSet)
