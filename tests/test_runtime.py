"""snnjax.runtime: the Eigen-convolution flag is added only when it is safe and wanted."""

import importlib.util
import os
import subprocess
import sys

import pytest

from snnjax import runtime

FLAG = runtime.EIGEN_CONVOLUTIONS_FLAG


@pytest.fixture
def fresh(monkeypatch):
    """A process state before JAX's backends start, with a tested jaxlib and no XLA_FLAGS."""
    monkeypatch.setattr(runtime, "_backends_initialized", lambda: False)
    monkeypatch.setattr(runtime, "_jaxlib_version", lambda: "0.10.2")
    monkeypatch.setattr(runtime, "_cpu_only", lambda: True)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    monkeypatch.delenv(runtime.OPT_OUT_ENV, raising=False)
    return monkeypatch


def test_flag_is_appended_once(fresh):
    assert runtime.use_eigen_convolutions() and runtime.eigen_convolutions()
    assert runtime.use_eigen_convolutions()
    assert os.environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=8 {FLAG}"


@pytest.mark.parametrize(
    "case", ["opt_out", "user_chose_ynn_types", "untested_jaxlib", "accelerator", "backend_started"]
)
def test_flag_is_left_out(fresh, case):
    if case == "opt_out":
        fresh.setenv(runtime.OPT_OUT_ENV, "ynn")
    elif case == "user_chose_ynn_types":
        fresh.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=+dot")
    elif case == "untested_jaxlib":
        fresh.setattr(runtime, "_jaxlib_version", lambda: "0.11.0")
    elif case == "accelerator":
        fresh.setattr(runtime, "_cpu_only", lambda: False)
    else:
        fresh.setattr(runtime, "_backends_initialized", lambda: True)
    before = os.environ["XLA_FLAGS"]
    assert not runtime.use_eigen_convolutions()
    assert os.environ["XLA_FLAGS"] == before and not runtime.eigen_convolutions()


def test_a_fresh_process_gets_the_flag_and_xla_accepts_it():
    code = (
        "from snnjax import runtime; ok = runtime.use_eigen_convolutions(); import jax, jax.numpy as jnp; "
        "y = jax.lax.conv_general_dilated(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1)), (1, 1), 'SAME', "
        "dimension_numbers=('NHWC', 'HWIO', 'NHWC')); "
        "print(ok, runtime._backends_initialized(), float(y.sum()))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", runtime.OPT_OUT_ENV)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    tested = runtime._jaxlib_version().startswith(runtime.TESTED_JAXLIB) and runtime._cpu_only()
    # 4x4 ones, 3x3 ones kernel, SAME: corners 4, edges 6, interior 9 -> 4*4 + 8*6 + 4*9 = 100
    assert out.stdout.split() == [str(tested), "True", "100.0"]


def test_cpu_only_reads_jax_platforms(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cuda,cpu")
    assert not runtime._cpu_only()
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    plugins = [name for name in runtime.ACCELERATOR_PLUGINS if importlib.util.find_spec(name) is not None]
    assert runtime._cpu_only() == (not plugins)
