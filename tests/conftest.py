"""Test session setup: 8 fake CPU devices so sharding tests run on any machine.

XLA reads XLA_FLAGS once, at backend start, so this must run before anything imports jax.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
# The suite compiles hundreds of small XLA programs and runs each for a few steps, so compiling is most
# of its CPU time. LLVM at O0 (XLA's HLO passes are unchanged: the same programs, less optimised machine
# code) cut the CPU time of 61 model/step/conversion tests from 993 s to 284 s, all passing (2-core
# Xeon, 2026-12-06). Set here, the flags reach every launch.py the tests start (they inherit the
# environment); users' runs keep XLA's defaults. Speed is measured in benchmarks/, never in tests.
_FAST_COMPILE = ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true")
for _flag in (_FLAG, *_FAST_COMPILE):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from snnjax import runtime  # noqa: E402  (imports jax, starts no backend)

runtime.use_eigen_convolutions()  # as launch.py does

import importlib.util  # noqa: E402

import pytest  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def _load_config(name: str, preset: str | None = None):
    """``configs/<name>.py``'s ``get_config(preset)``: the one copy of the config-file loading the tests use."""
    spec = importlib.util.spec_from_file_location(f"configs_{name}", os.path.join(CONFIGS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(preset)


@pytest.fixture(scope="session")
def load_config():
    """``load_config(name, preset=None)`` -> the config of ``configs/<name>.py:<preset>`` (a fresh copy per call)."""
    return _load_config


@pytest.fixture
def tiny_baseline(load_config):
    """``configs/baseline.py:digits`` shrunk to seconds: width 4, T = 2, batch 128, 1 epoch (11 steps)."""
    config = load_config("baseline", "digits")
    config.model.width, config.model.time_steps = 4, 2
    config.data.batch_size, config.train.epochs = 128, 1  # 1,437 training digits -> 11 steps
    config.train.progress_bar = config.train.tensorboard = False
    return config


# Tests marked slow from one list (tests/slow_tests.txt: a node id per line, its parametrisations
# included: the tests that start processes and those over 5 s), so that `-m "not slow"` is the quick subset
# (README, Development). A test that carries @pytest.mark.slow in its file is slow as well.
SLOW_LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow_tests.txt")


def slow_node_ids(path: str = SLOW_LIST) -> frozenset[str]:
    """The node ids (``tests/<file>.py::<test>``) listed in ``path``; comments (#) and blanks skipped."""
    with open(path) as f:
        return frozenset(line.split("#", 1)[0].strip() for line in f if line.split("#", 1)[0].strip())


def pytest_collection_modifyitems(config, items):
    slow = slow_node_ids()
    for item in items:
        if item.nodeid.split("[", 1)[0] in slow:
            item.add_marker(pytest.mark.slow)
