"""Matplotlib for headless figures (Agg backend), imported so that an unwritable HOME stays quiet.

Matplotlib keeps its config and font cache under ``$XDG_CONFIG_HOME``/``$XDG_CACHE_HOME`` (or
``~/.config``, ``~/.cache``). When those cannot be written (a service account with
``HOME=/nonexistent``, a read-only home), matplotlib logs two warnings at import (``mkdir -p
failed ...`` and ``Matplotlib created a temporary cache directory ...``), which absl's log
handler turns into two more lines beside snnjax's own cache warning. :func:`use_writable_config_dir`
points ``MPLCONFIGDIR`` at a temporary folder first, silently, as matplotlib itself would after
warning. Every snnjax module that draws imports matplotlib through :func:`pyplot` (or calls
:func:`use_writable_config_dir` before importing it).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

CONFIG_DIR_ENV = "MPLCONFIGDIR"


def _default_dirs() -> list[Path]:
    """Where matplotlib would put its config and cache without ``MPLCONFIGDIR`` (Linux/BSD rules;
    elsewhere ``~/.matplotlib``). Raises RuntimeError when the home directory cannot be resolved."""
    if sys.platform.startswith(("linux", "freebsd")):
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return [Path(config, "matplotlib"), Path(cache, "matplotlib")]
    return [Path.home() / ".matplotlib"]


def _writable(directory: Path) -> bool:
    """Matplotlib's own test: the folder can be created (if missing) and written to."""
    try:
        directory = directory.resolve()
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return directory.is_dir() and os.access(directory, os.W_OK)


def use_writable_config_dir() -> str | None:
    """Set ``MPLCONFIGDIR`` to a temporary folder (removed at exit) when matplotlib's default config
    or cache folder is not writable; the folder set, or None when nothing was changed.

    Does nothing when matplotlib is already imported (too late: it has chosen its folders) or when
    the user set ``MPLCONFIGDIR`` (their choice; matplotlib reports on it), and on Windows.
    """
    if "matplotlib" in sys.modules or os.environ.get(CONFIG_DIR_ENV) or sys.platform == "win32":
        return None
    try:
        if all(_writable(d) for d in _default_dirs()):
            return None
    except RuntimeError:  # Path.home() with no resolvable home directory
        pass
    tmpdir = tempfile.mkdtemp(prefix="snnjax-matplotlib-")
    atexit.register(shutil.rmtree, tmpdir, ignore_errors=True)
    os.environ[CONFIG_DIR_ENV] = tmpdir
    return tmpdir


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (nothing is shown; figures are saved as files)."""
    use_writable_config_dir()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
