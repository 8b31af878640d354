"""Process-level XLA settings that make training faster on CPU.

jax 0.10's XLA:CPU runs every convolution through YNNPACK by default. For the layer shapes of a
CIFAR Spiking ResNet those kernels run on one core (e.g. ``[128, 32, 32, 64] -> 64``: 100 ms on
one core of two), and their kernel gradients are 3-4x slower again. XLA's older Eigen
convolutions use every core: with them the whole ResNet-18 training step is 1.3-1.7x faster on a
2-core CPU (``benchmarks/RESULTS.md``). :func:`use_eigen_convolutions` switches to them by adding
one flag to ``XLA_FLAGS``; it must run before JAX initialises its CPU backend (``launch.py`` and
the test suite call it first thing). Outputs equal the default's to float rounding.

Opt out with ``SNNJAX_CPU_CONVOLUTIONS=ynn`` in the environment.
"""

from __future__ import annotations

import os
import sys

EIGEN_CONVOLUTIONS_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
# XLA aborts the process on an unknown flag, so the flag is only added for jaxlib releases in
# which it was measured to exist and to help; extend after measuring a new release.
TESTED_JAXLIB = ("0.10.",)
OPT_OUT_ENV = "SNNJAX_CPU_CONVOLUTIONS"
# Accelerator plugins carry their own XLA builds, which also parse XLA_FLAGS: where one is
# installed training runs there, so the CPU flag is not worth the risk of an unknown-flag abort.
ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")


def _backends_initialized() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - internal module moved
        return True
    return bool(getattr(xla_bridge, "_backends", {}))


def _jaxlib_version() -> str:
    try:
        from importlib.metadata import version

        return version("jaxlib")
    except Exception:  # pragma: no cover - jaxlib always comes with jax
        return ""


def _cpu_only() -> bool:
    """True when this process will run XLA on the CPU only (no accelerator plugin, no other platform asked for)."""
    import importlib.util

    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms and set(p.strip() for p in platforms.split(",")) != {"cpu"}:
        return False
    return not any(importlib.util.find_spec(name) is not None for name in ACCELERATOR_PLUGINS)


def use_eigen_convolutions() -> bool:
    """Route XLA:CPU convolutions to Eigen (multi-threaded); returns whether that is in effect.

    Does nothing (and returns False) when ``SNNJAX_CPU_CONVOLUTIONS=ynn``, when ``XLA_FLAGS``
    already chooses YNN fusion types, for untested jaxlib releases, where a GPU/TPU plugin is
    installed or ``JAX_PLATFORMS`` names another platform, or once JAX's backends are initialised
    (XLA reads its flags only then).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if EIGEN_CONVOLUTIONS_FLAG in flags:
        return True
    if (
        os.environ.get(OPT_OUT_ENV, "eigen").lower() == "ynn"
        or "xla_cpu_experimental_ynn_fusion_type" in flags
        or not _jaxlib_version().startswith(TESTED_JAXLIB)
        or not _cpu_only()
        or _backends_initialized()
    ):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {EIGEN_CONVOLUTIONS_FLAG}".strip()
    return True


def eigen_convolutions() -> bool:
    """Whether this process's XLA:CPU was (or will be) started with Eigen convolutions."""
    return EIGEN_CONVOLUTIONS_FLAG in os.environ.get("XLA_FLAGS", "")
