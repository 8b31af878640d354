"""Event (dynamic) data: polarity frames, binning of event streams, a static -> event converter.

Event tensor format
-------------------
One sample is ``uint8 [T, H, W, 2]``: the number of events (or 0/1 with ``binary``) per time bin,
pixel and polarity; a dataset is ``[N, T, H, W, 2]``. The channel index IS the polarity, as in
tonic's ``ToFrame``: channel ``OFF = 0`` holds brightness decreases (``p = 0``, or ``p <= 0`` for
-1/+1 encodings), channel ``ON = 1`` brightness increases (``p > 0``). Counts saturate at 255.

Normalisation: the event datasets here report ``mean = 0`` and ``std = 1/255`` per channel
(:func:`passthrough_stats`), so the pipeline's ``(x / 255 - mean) / std`` hands the network the
raw counts (exact for binary frames; within float32 rounding, relative 1e-7, for larger counts).

Event streams
-------------
Raw events are tonic-compatible NumPy structured arrays with fields ``x``, ``y``, ``t``, ``p``
(:data:`EVENT_DTYPE`, integers; ``t`` may be float). :func:`bin_events` turns one stream into
``T`` frames: with window start ``t0`` and length ``d`` (by default the sample's first event time
and ``t_max - t0``), an event at time ``t`` goes to bin ``k = floor(T * (t - t0) / d)``, i.e. bin
``k`` covers ``[t0 + k d / T, t0 + (k + 1) d / T)``; the last bin also takes ``t = t0 + d``;
events outside ``[t0, t0 + d]`` are dropped. (tonic's ``ToFrame(n_time_bins=T)`` can drop the
last events of a sample; this rule never drops an event of the default window.)

Static -> event conversion (ES-ImageNet / ES-UCF101 style)
-----------------------------------------------------------
:func:`moving_window_events` makes events from a still image by moving it, like a sensor
saccade. Exact rule, per image:

1. ``g = max over channels`` of the uint8 image (ES-ImageNet's grey level), as int16 ``[H, W]``.
2. Positions ``p_k = path[k mod len(path)]``, ``k = 0..T`` (``T + 1`` positions), each a
   ``(dy, dx)`` pixel offset. ``F_k = shift(g, p_k)``: ``F_k[r, c] = g[r - dy, c - dx]`` where
   that pixel exists, else 0 (the frame keeps size ``H x W``; content moved out is lost).
3. Frame ``k = 0..T-1``: ``D_k = F_{k+1} - F_k``; an ON event where ``D_k > threshold``, an OFF
   event where ``D_k < -threshold`` (strict inequalities, pixel units 0..255): at most one event
   per pixel, polarity and frame, so frames are binary.

The default path is ES-ImageNet's 9-position trace, centred: ``(0,-1) (-1,1) (1,0) (0,-1)
(-1,0) (1,1) (0,-1) (0,0) (1,0)`` (consecutive positions always differ, so every frame sees
motion); longer ``T`` repeats it. The default threshold 46 is ES-ImageNet's 0.18 on the [0, 1]
scale. Example (hand count): a black image with one pixel of value 200 at (2, 2) and T = 3 gives
per frame exactly one ON event at the pixel's new position and one OFF event at its old one
(3 ON + 3 OFF), as long as the pixel stays inside the frame; a pixel of value 40 <= 46 gives none.
Unlike ES-ImageNet this does not pad the canvas nor mask the image-border strips, so that event
frames keep the static image's size (a pretrained network sees the same geometry).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence

import numpy as np

from snnjax.data.errors import InvalidDatasetOptionError
from snnjax.data.types import ArrayDataset, DatasetSplits

OFF, ON = 0, 1
NUM_POLARITIES = 2
# tonic's dtype (x, y, t, p as machine ints); readers accept any integer x/y/p and numeric t.
EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
EVENT_FIELDS = ("x", "y", "t", "p")

# ES-ImageNet's trace (rows 1,0,2,1,0,2,1,1,2; columns 0,2,1,0,1,2,0,1,1) minus its centre (1, 1).
ES_IMAGENET_PATH: tuple[tuple[int, int], ...] = (
    (0, -1),
    (-1, 1),
    (1, 0),
    (0, -1),
    (-1, 0),
    (1, 1),
    (0, -1),
    (0, 0),
    (1, 0),
)
DEFAULT_THRESHOLD = 46  # pixel units; ES-ImageNet's 0.18 * 255
DEFAULT_TIME_STEPS = 6  # the pretraining paper's T
_CONVERT_CHUNK = 4096  # images per vectorised conversion chunk (bounds host memory)


def passthrough_stats(channels: int = NUM_POLARITIES) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` for which ``normalize`` returns event counts unchanged: (0, 1/255) per channel."""
    return (0.0,) * channels, (1.0 / 255.0,) * channels


# ---------------------------------------------------------------------------------------------
# Static -> event conversion.
# ---------------------------------------------------------------------------------------------


def shift_frames(gray: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift ``[N, H, W]`` images by ``(dy, dx)`` pixels with zero fill: ``out[:, r, c] = in[:, r - dy, c - dx]``."""
    _, height, width = gray.shape
    out = np.zeros_like(gray)
    rows_out = slice(max(dy, 0), min(height + dy, height))
    cols_out = slice(max(dx, 0), min(width + dx, width))
    rows_in = slice(max(-dy, 0), min(height - dy, height))
    cols_in = slice(max(-dx, 0), min(width - dx, width))
    if rows_out.start < rows_out.stop and cols_out.start < cols_out.stop:
        out[:, rows_out, cols_out] = gray[:, rows_in, cols_in]
    return out


def _check_path(path: Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    try:
        steps = tuple((int(dy), int(dx)) for dy, dx in path)
    except (TypeError, ValueError) as err:
        raise ValueError(f"path must be a sequence of (dy, dx) integer pairs, got {path!r}") from err
    if len(steps) < 2:
        raise ValueError(f"path needs at least 2 positions to make motion, got {path!r}")
    return steps


def moving_window_events(
    images: np.ndarray,
    *,
    time_steps: int = DEFAULT_TIME_STEPS,
    threshold: float = DEFAULT_THRESHOLD,
    path: Sequence[Sequence[int]] = ES_IMAGENET_PATH,
) -> np.ndarray:
    """Convert still images into binary ON/OFF event frames (rule in the module docstring).

    Args:
      images: uint8 ``[N, H, W, C]`` (or ``[H, W, C]`` for one image), pixels 0..255.
      time_steps: ``T``, frames per sample (``T + 1`` positions along ``path``).
      threshold: brightness change (pixel units, 0..255) an event must exceed.
      path: ``(dy, dx)`` offsets of the moving window, repeated when ``T + 1 > len(path)``.

    Returns:
      uint8 ``[N, T, H, W, 2]`` (``[T, H, W, 2]`` for one image), values 0/1, channel ``OFF = 0``,
      ``ON = 1``.
    """
    images = np.asarray(images)
    single = images.ndim == 3
    if single:
        images = images[None]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"moving_window_events needs uint8 images [N, H, W, C], got {images.dtype} {images.shape}")
    if isinstance(time_steps, bool) or not isinstance(time_steps, numbers.Integral) or time_steps < 1:
        raise ValueError(f"time_steps must be a positive int, got {time_steps!r}")
    if not 0 <= float(threshold) < 255:
        raise ValueError(f"threshold must be in [0, 255) pixel units, got {threshold!r}")
    steps = _check_path(path)
    positions = [steps[k % len(steps)] for k in range(int(time_steps) + 1)]
    chunks = [
        _convert_chunk(images[i : i + _CONVERT_CHUNK], positions, float(threshold))
        for i in range(0, images.shape[0], _CONVERT_CHUNK)
    ]
    frames = (
        np.concatenate(chunks, axis=0)
        if chunks
        else np.zeros((0, int(time_steps)) + images.shape[1:3] + (NUM_POLARITIES,), np.uint8)
    )
    return frames[0] if single else frames


def _convert_chunk(images: np.ndarray, positions: list[tuple[int, int]], threshold: float) -> np.ndarray:
    gray = images.max(axis=-1).astype(np.int16)  # [n, H, W]
    shifted = np.stack([shift_frames(gray, dy, dx) for dy, dx in positions])  # [T+1, n, H, W]
    diff = shifted[1:] - shifted[:-1]  # [T, n, H, W]
    frames = np.stack([diff < -threshold, diff > threshold], axis=-1)  # channel = polarity
    return frames.transpose(1, 0, 2, 3, 4).astype(np.uint8)  # [n, T, H, W, 2]


# ---------------------------------------------------------------------------------------------
# Event streams <-> frames.
# ---------------------------------------------------------------------------------------------


def check_events(events: np.ndarray, *, sensor_size: tuple[int, int], source: str = "events") -> None:
    """Raise ``ValueError`` unless ``events`` is a structured array with x, y, t, p inside ``sensor_size`` (W, H)."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in EVENT_FIELDS if f not in names]
    if missing:
        raise ValueError(
            f"{source}: expected a structured array with fields {list(EVENT_FIELDS)} (tonic layout), "
            f"missing {missing}; got dtype {getattr(events, 'dtype', type(events))}."
        )
    for field in ("x", "y", "p"):
        kind = events.dtype[field].kind
        if kind not in "iub":
            raise ValueError(f"{source}: field {field!r} must be integer, got dtype {events.dtype[field]}.")
    width, height = sensor_size
    if events.size and (
        events["x"].min() < 0 or events["x"].max() >= width or events["y"].min() < 0 or events["y"].max() >= height
    ):
        raise ValueError(
            f"{source}: event coordinates x in [{events['x'].min()}, {events['x'].max()}], "
            f"y in [{events['y'].min()}, {events['y'].max()}] fall outside sensor_size "
            f"(W, H) = {sensor_size}; pass the sensor's real size."
        )


def time_bins(t: np.ndarray, time_steps: int, t_start: float, duration: float) -> np.ndarray:
    """Bin index of each time ``t`` (rule in the module docstring); -1 for times outside the window."""
    inside = (t >= t_start) & (t <= t_start + duration)
    if np.issubdtype(t.dtype, np.integer) and float(t_start).is_integer() and float(duration).is_integer():
        # Integer arithmetic keeps bin edges exact for microsecond stamps.
        bins = (t.astype(np.int64) - int(t_start)) * time_steps // max(int(duration), 1)
    else:
        bins = np.floor((t.astype(np.float64) - t_start) * time_steps / max(float(duration), 1e-300)).astype(np.int64)
    return np.where(inside, np.minimum(bins, time_steps - 1), -1)


def bin_events(
    events: np.ndarray,
    *,
    sensor_size: tuple[int, int],
    time_steps: int,
    t_start: float | None = None,
    duration: float | None = None,
    binary: bool = False,
) -> np.ndarray:
    """Accumulate one event stream into frames ``uint8 [T, H, W, 2]``.

    Args:
      events: structured array with fields x, y, t, p (tonic layout), any order.
      sensor_size: ``(W, H)`` of the sensor (tonic's ``sensor_size[:2]``).
      time_steps: ``T``.
      t_start: window start (default: the first event's time).
      duration: window length in the events' time unit (default: ``t_max - t_start``; a sample
        whose events all share one time stamp puts them all in bin 0).
      binary: 1 where a bin has at least one event, instead of the count (saturating at 255).

    Returns:
      uint8 ``[T, H, W, 2]``; channel ``OFF = 0`` (``p <= 0``), ``ON = 1`` (``p > 0``).
    """
    width, height = int(sensor_size[0]), int(sensor_size[1])
    check_events(events, sensor_size=(width, height))
    if time_steps < 1:
        raise ValueError(f"time_steps must be >= 1, got {time_steps}")
    frames_shape = (int(time_steps), height, width, NUM_POLARITIES)
    if events.size == 0:
        return np.zeros(frames_shape, np.uint8)
    t = events["t"]
    t0 = float(t.min()) if t_start is None else float(t_start)
    if duration is None:
        span = float(t.max()) - t0
    elif float(duration) <= 0:
        raise ValueError(f"duration must be > 0 (time units of the events), got {duration}")
    else:
        span = float(duration)
    bins = time_bins(t, int(time_steps), t0, span)
    keep = bins >= 0
    channel = (events["p"][keep] > 0).astype(np.int64)
    flat = np.ravel_multi_index(
        (bins[keep], events["y"][keep].astype(np.int64), events["x"][keep].astype(np.int64), channel), frames_shape
    )
    counts = np.bincount(flat, minlength=int(np.prod(frames_shape))).reshape(frames_shape)
    counts = np.minimum(counts, 1 if binary else 255)
    return counts.astype(np.uint8)


def frames_to_events(frames: np.ndarray, *, dt: int = 1000) -> np.ndarray:
    """Event stream (:data:`EVENT_DTYPE`, sorted by time) with ``frames[k, y, x, c]`` events at ``t = k * dt``.

    The inverse of :func:`bin_events` with ``t_start=0, duration=T * dt``; used to store converted
    datasets in the tonic layout (``p = 1`` ON, ``p = 0`` OFF).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != NUM_POLARITIES:
        raise ValueError(f"frames must be [T, H, W, 2], got shape {frames.shape}")
    k, y, x, c = np.nonzero(frames)
    repeats = frames[k, y, x, c].astype(np.int64)
    events = np.zeros(int(repeats.sum()), EVENT_DTYPE)
    events["x"], events["y"] = np.repeat(x, repeats), np.repeat(y, repeats)
    events["t"], events["p"] = np.repeat(k * int(dt), repeats), np.repeat(c, repeats)
    return events[np.argsort(events["t"], kind="stable")]


# ---------------------------------------------------------------------------------------------
# Converted datasets registered in load_dataset.
# ---------------------------------------------------------------------------------------------


def _event_options(dataset: str, time_steps: object, threshold: object) -> tuple[int, float]:
    if isinstance(time_steps, bool) or not isinstance(time_steps, numbers.Integral) or time_steps < 1:
        raise InvalidDatasetOptionError(
            f"{dataset} option time_steps={time_steps!r} is invalid; pass a positive int equal to "
            "config.model.time_steps (e.g. 6)."
        )
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 <= threshold < 255:
        raise InvalidDatasetOptionError(
            f"{dataset} option threshold={threshold!r} is invalid; pass a brightness change in [0, 255) "
            f"pixel units (default {DEFAULT_THRESHOLD})."
        )
    return int(time_steps), float(threshold)


def convert_splits(static: DatasetSplits, name: str, *, time_steps: int, threshold: float) -> DatasetSplits:
    """Both splits of a static dataset converted by :func:`moving_window_events`, with pass-through stats."""

    def convert(split: ArrayDataset) -> ArrayDataset:
        frames = moving_window_events(split.images, time_steps=time_steps, threshold=threshold)
        return ArrayDataset(frames, split.labels, split.num_classes)

    mean, std = passthrough_stats()
    return DatasetSplits(name, convert(static.train), convert(static.test), mean, std)


def load_digits_events(
    *, time_steps: int = DEFAULT_TIME_STEPS, threshold: float = DEFAULT_THRESHOLD, size: int = 8
) -> DatasetSplits:
    """``digits`` (same 1,437 / 360 split) converted to event frames uint8 ``[N, T, size, size, 2]``.

    Offline and deterministic: the pipe-D stand-in for ES-ImageNet. Options: ``time_steps`` (T),
    ``threshold`` (pixel units), ``size`` (digits' nearest-neighbour upsampling, before conversion).
    """
    from snnjax.data.digits import load_digits

    time_steps, threshold = _event_options("digits_events", time_steps, threshold)
    return convert_splits(load_digits(size=size), "digits_events", time_steps=time_steps, threshold=threshold)


def _converted_static(
    name: str, load_static, data_dir, download: bool, time_steps: object, threshold: object
) -> DatasetSplits:
    """A downloadable static dataset (``load_static(data_dir=, download=)``) converted to events as ``name``."""
    time_steps, threshold = _event_options(name, time_steps, threshold)
    static = load_static(data_dir=data_dir, download=download)
    return convert_splits(static, name, time_steps=time_steps, threshold=threshold)


def load_cifar10_events(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    time_steps: int = DEFAULT_TIME_STEPS,
    threshold: float = DEFAULT_THRESHOLD,
) -> DatasetSplits:
    """CIFAR-10 converted to event frames uint8 ``[N, T, 32, 32, 2]`` (737 MB for the train split at T = 6)."""
    from snnjax.data.cifar import load_cifar10

    return _converted_static("cifar10_events", load_cifar10, data_dir, download, time_steps, threshold)


def load_fashion_mnist_events(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    time_steps: int = DEFAULT_TIME_STEPS,
    threshold: float = DEFAULT_THRESHOLD,
) -> DatasetSplits:
    """Fashion-MNIST converted to event frames uint8 ``[N, T, 28, 28, 2]`` (564 MB for the train split at T = 6)."""
    from snnjax.data.idx import load_fashion_mnist

    return _converted_static("fashion_mnist_events", load_fashion_mnist, data_dir, download, time_steps, threshold)
