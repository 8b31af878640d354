"""Event datasets stored locally as tonic-style NumPy files, read into event frames.

On-disk layout (dataset name ``event_folder``, ``data_dir`` = ``ROOT``)::

    ROOT/meta.json          {"sensor_size": [W, H, 2], "num_classes": K, "duration": null}
    ROOT/train/labels.npy   integer labels [N]; labels[i] belongs to sample i
    ROOT/train/0.npy ...    one structured event array per sample, fields x, y, t, p
                            (tonic's layout, e.g. ``np.save(f, dataset[i][0])``); the file stem
                            is the sample index 0..N-1 (zero padding allowed: 000017.npy)
    ROOT/test/...           the same for the test split

``sensor_size`` is tonic's ``(W, H, P)`` (P = 2 polarities). ``num_classes`` defaults to
``max(label) + 1`` over both splits. ``duration`` (optional, time units of ``t``) fixes every
sample's binning window to ``[t_first, t_first + duration]``; null bins each sample over its own
span (:func:`snnjax.data.events.bin_events` gives the exact rule). Samples are binned on load
into uint8 ``[N, T, H, W, 2]`` frames (counts, or 0/1 with ``binary``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from snnjax.data import events as events_lib
from snnjax.data.errors import DatasetCorruptError, DatasetNotFoundError, InvalidDatasetOptionError
from snnjax.data.types import ArrayDataset, DatasetSplits

META_FILE = "meta.json"
LABELS_FILE = "labels.npy"
SPLITS = ("train", "test")
_SAMPLE_FILE = re.compile(r"^(\d+)\.npy$")


def write_event_split(
    root: str | os.PathLike[str], split: str, samples: Sequence[np.ndarray], labels: np.ndarray
) -> None:
    """Write ``samples`` (structured event arrays) and ``labels`` as ``ROOT/<split>/{i}.npy`` + ``labels.npy``."""
    if len(samples) != len(labels):
        raise ValueError(f"{len(samples)} samples but {len(labels)} labels for split {split!r}")
    split_dir = Path(root) / split
    split_dir.mkdir(parents=True, exist_ok=True)
    width = max(len(str(max(len(samples) - 1, 0))), 1)
    for i, sample in enumerate(samples):
        np.save(split_dir / f"{i:0{width}d}.npy", sample)
    np.save(split_dir / LABELS_FILE, np.asarray(labels, np.int64))


def write_meta(
    root: str | os.PathLike[str], *, sensor_size: tuple[int, int], num_classes: int, duration: float | None = None
) -> None:
    """Write ``ROOT/meta.json`` (``sensor_size`` is ``(W, H)``; stored as tonic's ``[W, H, 2]``)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    meta = {
        "sensor_size": [int(sensor_size[0]), int(sensor_size[1]), events_lib.NUM_POLARITIES],
        "num_classes": int(num_classes),
        "duration": duration,
    }
    (Path(root) / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def export_frames(root: str | os.PathLike[str], splits: DatasetSplits, *, dt: int = 1000) -> None:
    """Store an event-frame dataset (e.g. ``digits_events``) in this layout, ``dt`` time units per frame.

    Reading it back with the same ``time_steps`` returns the same frames (``duration = T * dt``).
    """
    time_steps, height, width, _ = splits.image_shape
    write_meta(root, sensor_size=(width, height), num_classes=splits.num_classes, duration=time_steps * dt)
    for split, data in (("train", splits.train), ("test", splits.test)):
        write_event_split(root, split, [events_lib.frames_to_events(f, dt=dt) for f in data.images], data.labels)


def read_meta(root: Path) -> dict:
    path = root / META_FILE
    if not path.is_file():
        raise DatasetNotFoundError(
            f"event_folder: {path} not found. Fix: create it, e.g. "
            '{"sensor_size": [W, H, 2], "num_classes": K, "duration": null}, '
            "next to the train/ and test/ folders (layout in snnjax/data/event_io.py)."
        )
    try:
        meta = json.loads(path.read_text())
        width, height = int(meta["sensor_size"][0]), int(meta["sensor_size"][1])
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise DatasetCorruptError(
            f"event_folder: {path} must hold JSON with sensor_size [W, H, 2]; could not read it ({err})."
        ) from err
    return {"sensor_size": (width, height), "num_classes": meta.get("num_classes"), "duration": meta.get("duration")}


def sample_files(split_dir: Path, num_samples: int) -> list[Path]:
    """The sample files 0..N-1 of a split, in index order; errors name what is missing or extra."""
    found = {int(m.group(1)): split_dir / name for name in os.listdir(split_dir) if (m := _SAMPLE_FILE.match(name))}
    expected = set(range(num_samples))
    if set(found) != expected:
        missing = sorted(expected - set(found))[:5]
        extra = sorted(set(found) - expected)[:5]
        raise DatasetCorruptError(
            f"event_folder: {split_dir} has {len(found)} sample files but {LABELS_FILE} has {num_samples} labels "
            f"(missing indices {missing}, unexpected {extra}). Fix: one <index>.npy per label, indices 0..N-1."
        )
    return [found[i] for i in range(num_samples)]


def read_event_split(
    split_dir: str | os.PathLike[str],
    *,
    sensor_size: tuple[int, int],
    time_steps: int,
    duration: float | None = None,
    binary: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Bin every sample of ``split_dir``: ``(frames uint8 [N, T, H, W, 2], labels int64 [N])``."""
    split_dir = Path(split_dir)
    labels_path = split_dir / LABELS_FILE
    if not labels_path.is_file():
        raise DatasetNotFoundError(
            f"event_folder: {labels_path} not found. Fix: save the split's integer "
            f"labels there (np.save), one per sample file."
        )
    labels = np.load(labels_path)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DatasetCorruptError(
            f"event_folder: {labels_path} must be a 1-D integer array, got {labels.dtype} {labels.shape}."
        )
    width, height = sensor_size
    frames = np.zeros((labels.shape[0], time_steps, height, width, events_lib.NUM_POLARITIES), np.uint8)
    for i, path in enumerate(sample_files(split_dir, labels.shape[0])):
        stream = np.load(path, allow_pickle=False)
        try:
            frames[i] = events_lib.bin_events(
                stream, sensor_size=sensor_size, time_steps=time_steps, duration=duration, binary=binary
            )
        except ValueError as err:
            raise DatasetCorruptError(f"event_folder: sample {path}: {err}") from err
    return frames, labels


def load_event_folder(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    time_steps: int = events_lib.DEFAULT_TIME_STEPS,
    binary: bool = False,
    duration: float | None = None,
) -> DatasetSplits:
    """Read ``data_dir`` (layout above) into event frames uint8 ``[N, T, H, W, 2]``, pass-through stats.

    Args:
      data_dir: the dataset root (required; nothing is downloaded).
      download: ignored (local files only); accepted for ``load_dataset``'s interface.
      time_steps: ``T`` bins per sample (set it to ``config.model.time_steps``).
      binary: 0/1 frames instead of event counts.
      duration: window length per sample in time units of ``t``; overrides ``meta.json``.
    """
    del download
    if data_dir is None:
        raise InvalidDatasetOptionError(
            "event_folder needs data_dir: the folder holding meta.json, train/ and test/ "
            "(set --config.data.data_dir=PATH; layout in snnjax/data/event_io.py)."
        )
    if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
        raise InvalidDatasetOptionError(
            f"event_folder option time_steps={time_steps!r} is invalid; "
            "pass a positive int equal to config.model.time_steps."
        )
    root = Path(data_dir)
    meta = read_meta(root)
    duration = meta["duration"] if duration is None else duration
    loaded = {
        split: read_event_split(
            root / split, sensor_size=meta["sensor_size"], time_steps=time_steps, duration=duration, binary=bool(binary)
        )
        for split in SPLITS
    }
    num_classes = meta["num_classes"]
    if num_classes is None:
        num_classes = int(max(int(labels.max(initial=-1)) for _, labels in loaded.values())) + 1
    splits = {
        split: ArrayDataset(frames, labels.astype(np.int32), int(num_classes))
        for split, (frames, labels) in loaded.items()
    }
    mean, std = events_lib.passthrough_stats()
    return DatasetSplits("event_folder", splits["train"], splits["test"], mean, std)
