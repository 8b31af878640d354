"""``benchmarks/results/<name>.json``: a benchmark's values with how, where and when they were measured.

Every speed or memory figure that README.md or docs/ quote comes from one of these files, and
``tests/test_quoted_figures.py`` fails when a quoted figure disagrees with its file. A file holds
``name``, ``command`` (the argv that produced it), ``commit`` (``git rev-parse HEAD`` of the
checkout the imported ``snnjax`` package comes from, and whether it had uncommitted changes to
tracked files), ``machine`` (platform, CPU, cores, jax version, devices),
``date_utc``, ``load_before`` / ``load_after`` (1-, 5-, 15-minute load averages: the machine is
shared) and the benchmark's ``values``.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
from typing import Any

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"


def _snnjax_checkout() -> pathlib.Path:
    """The directory of the ``snnjax`` package this process imports (PYTHONPATH may point at another checkout)."""
    import snnjax

    return pathlib.Path(snnjax.__file__).resolve().parent


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=_snnjax_checkout(), capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine() -> dict[str, Any]:
    """Where this process runs: platform, CPU model and count, jax/jaxlib versions, devices, XLA_FLAGS."""
    import jax

    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "devices": str(jax.devices()),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def load() -> list[float]:
    """The 1-, 5- and 15-minute load averages (``uptime``)."""
    return [round(x, 2) for x in os.getloadavg()]


def write(name: str, values: Any, load_before: list[float], path: pathlib.Path | None = None) -> pathlib.Path:
    """Write ``benchmarks/results/<name>.json`` (or ``path``) and return its path."""
    path = path or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "command": "python " + " ".join(sys.argv),
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": machine(),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_before": load_before,
        "load_after": load(),
        "values": values,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
