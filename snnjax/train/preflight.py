"""Checks that run before anything is loaded or compiled, so a bad setup fails in seconds."""

from __future__ import annotations

import os
import shutil
import socket
from typing import Any


class WorkdirError(OSError):
    """The workdir cannot hold the run (unwritable, not a directory, or too little free space)."""


def check_workdir(workdir: str, *, min_free_mb: float) -> None:
    """Create ``workdir``, write and delete a probe file, and check free disk space.

    Raises :class:`WorkdirError` naming the path and the fix.
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        # One probe per process: the processes of a multi-host run check a shared workdir at once.
        probe = os.path.join(workdir, f".write_probe.{socket.gethostname()}.{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as err:
        raise WorkdirError(
            f"--workdir={workdir} is not writable ({err.strerror or err}). Fix: pass a directory "
            "you can write to, on a disk with free space."
        ) from err
    free_mb = shutil.disk_usage(workdir).free / 2**20
    if free_mb < min_free_mb:
        raise WorkdirError(
            f"--workdir={workdir} has {free_mb:.0f} MiB free, less than "
            f"config.train.min_free_disk_mb={min_free_mb:g}. Fix: free space, pick another disk, or "
            "lower config.train.min_free_disk_mb if the run really needs less."
        )


RESUME_SECTIONS = ("model", "data")
# Keys that change where the data comes from or how fast the step runs, not what is trained.
RESUME_IGNORED = {
    # Streaming: how many readers decode, and where the same records live, change no batch.
    "data": ("data_dir", "download", "eval_batch_size", "workers", "worker_processes", "records_dir"),
    "model": ("unroll", "lif_impl", "remat", "conv_grad"),
}


def resume_mismatches(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Differences in the sections that define the trained model (``model``, ``data``).

    Other sections (``train.epochs``, logging, ...) may change between a run and its resumption,
    e.g. to train longer.
    """
    if not saved:
        return []
    from snnjax import models  # local: keeps the preflight checks light
    from snnjax.data.from_config import data_config

    saved = {**saved, "model": models.upgrade_legacy(saved.get("model", {}))}  # 0.1 checkpoints
    # A data key that a checkpoint lacks was added to the library after it was written (normalization /
    # mean / std, streaming, image_size, ...): the run trained with what that key's default means.
    defaults = data_config().to_dict()
    saved["data"] = {**defaults, **saved.get("data", {})}
    current = {**current, "data": {**defaults, **current.get("data", {})}}
    diffs = []
    for section in RESUME_SECTIONS:
        old, new = saved.get(section, {}), current.get(section, {})
        for key in sorted(set(old) | set(new)):
            if key in RESUME_IGNORED.get(section, ()):
                continue
            a, b = old.get(key), new.get(key)
            if isinstance(a, list):
                a = tuple(a)
            if isinstance(b, list):
                b = tuple(b)
            if a != b:
                diffs.append(f"{section}.{key}: checkpoint {a!r} vs now {b!r}")
    return diffs
