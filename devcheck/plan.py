"""What the device check runs: test selections, config presets and speed-table sizes, named once.

``tests/test_device_check.py`` asserts that every file, selection and preset named here exists, so
a moved test file or renamed preset can never be skipped in silence on the GPU again.
"""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"  # the step scripts the speed workers import (STEP_SCRIPTS)
# How the parent starts its workers (``--worker KIND``): this package as a module, cwd = ROOT.
ENTRY = ("-m", "devcheck")
H200_BF16_PEAK_FLOPS = 790e12  # dense bf16, measured ~788 TFLOP/s with an 8192^3 matmul (device README)

# Correctness tests: (file, -k expression within that file or None for all of it).
# QUICK runs first (its result is usable on its own if the window closes early); TESTS after the
# quick speed rows. The sharded-step test asserts 8 devices (conftest's fake CPU devices): with
# fewer its failure is expected, and the script's own sharded check covers the device.
QUICK_TESTS = (
    ("tests/test_neurons.py", "hand_computed"),
    ("tests/test_losses.py", "kd_kl_hand_value"),
)
TESTS = (
    ("tests/test_neurons.py", None),
    ("tests/test_fast_paths.py", None),
    ("tests/methods/idsnn/test_transplant.py", None),
    ("tests/test_losses.py", "kd or hinton"),
    ("tests/train/test_steps.py", "sharded"),
)
SHARDED_TEST = "test_sharded_step_equals_single_device_step"

# Configs the e2e part runs: the GPU preset, the dry run's, and the synthetic fallback.
E2E_CONFIG = "configs/idsnn.py:fashion_mnist_full"
DRY_E2E_CONFIG = "configs/baseline.py:digits"
FALLBACK_E2E_CONFIG = "configs/baseline.py"
# Scripts the speed workers import.
STEP_SCRIPTS = ("benchmarks/train_step.py", "benchmarks/spikingjelly_step.py")

# Speed table. Rows are (T, batch) cells x frameworks x dtypes; QUICK rows (one T=4 row per
# framework) run right after the quick tests, the rest after the full tests.
FULL = dict(
    width=64,
    cells=[(4, 128), (4, 64), (1, 128), (6, 128), (1, 64), (6, 64)],
    quick=[(4, 128, "snnjax", "bfloat16"), (4, 128, "spikingjelly", "bfloat16")],
    steps=10,
    warmup=3,
    snnjax_dtypes=["float32", "bfloat16"],
    sj_impls=["auto", "torch"],
    sj_dtypes=["float32", "bfloat16", "float16"],
)
DRY = dict(
    width=8,
    cells=[(2, 4)],
    quick=[(2, 4, "snnjax", "float32")],
    steps=2,
    warmup=1,
    snnjax_dtypes=["float32"],
    sj_impls=["auto", "torch"],
    sj_dtypes=["float32"],
)


def k_expression(selections) -> str:
    """One pytest ``-k`` for several files: each file's own expression applies to its tests only.

    ``-k`` matches parent names too, so ``test_losses and (kd)`` keeps the KD tests of that module.
    """
    parts = []
    for path, k in selections:
        stem = pathlib.Path(path).stem
        parts.append(f"({stem} and ({k}))" if k else f"({stem})")
    return " or ".join(parts)


def files(selections) -> list[str]:
    return [path for path, _ in selections]
