"""Multi-process settings read from the environment, and the launcher's built-in config names (no processes started)."""

import os

import pytest
from absl import app

from snnjax import launch
from snnjax.train import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL = {"JAX_COORDINATOR_ADDRESS": "10.0.0.2:12355", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}


def test_all_three_variables_are_passed_explicitly():
    s = distributed.settings_from_env(ALL)
    assert (s["coordinator_address"], s["num_processes"], s["process_id"]) == ("10.0.0.2:12355", 4, 3)
    assert s["heartbeat_timeout_seconds"] == distributed.DEFAULT_HEARTBEAT_S
    s = distributed.settings_from_env({**ALL, "SNNJAX_HEARTBEAT_TIMEOUT_S": "7", "SNNJAX_INIT_TIMEOUT_S": "30"})
    assert s["heartbeat_timeout_seconds"] == 7 and s["initialization_timeout"] == 30


def test_no_variables_means_one_process_unless_a_cluster_or_auto():
    assert distributed.settings_from_env({}) is None
    assert distributed.settings_from_env({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "1"}) is None
    assert "coordinator_address" not in distributed.settings_from_env({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "8"})
    assert "coordinator_address" not in distributed.settings_from_env({"SNNJAX_DISTRIBUTED": "auto"})
    assert distributed.settings_from_env({**ALL, "SNNJAX_DISTRIBUTED": "off"}) is None


@pytest.mark.parametrize("missing", sorted(ALL))
def test_a_missing_variable_is_named(missing):
    env = {k: v for k, v in ALL.items() if k != missing}
    with pytest.raises(distributed.DistributedConfigError, match=f"^{missing} is not set"):
        distributed.settings_from_env(env)


@pytest.mark.parametrize(
    "env,match",
    [
        ({**ALL, "JAX_PROCESS_ID": "4"}, "JAX_PROCESS_ID=4 must be below JAX_NUM_PROCESSES=4"),
        ({**ALL, "JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two' is not an integer"),
        ({**ALL, "JAX_COORDINATOR_ADDRESS": "10.0.0.2"}, "must be host:port"),
        ({**ALL, "SNNJAX_DISTRIBUTED": "yes"}, "must be 'auto', 'off' or unset"),
    ],
)
def test_invalid_values_are_named(env, match):
    with pytest.raises(distributed.DistributedConfigError, match=match):
        distributed.settings_from_env(env)


def test_single_process_helpers():
    assert distributed.is_primary() and distributed.process_count() == 1
    assert distributed.broadcast_from_primary({"a": 1}) == {"a": 1}
    distributed.sync("noop")
    distributed.check_same_everywhere("config", "x")
    assert distributed.lost_processes(0.0) is None


def test_lost_peer_errors_are_told_from_bugs():
    assert distributed.looks_like_lost_peer(ValueError("UNKNOWN: Gloo all-reduce failed: Connection closed by peer"))
    assert not distributed.looks_like_lost_peer(ValueError("shapes (3,) and (4,) do not match"))


def test_built_in_config_names_resolve_to_the_shipped_files(tmp_path):
    configs = os.path.join(ROOT, "configs")
    assert str(launch.configs_dir()) == configs
    assert launch.resolve_config("idsnn.py:digits") == os.path.join(configs, "idsnn.py") + ":digits"
    assert launch.resolve_config("teacher") == os.path.join(configs, "teacher.py")
    assert launch.resolve_config("configs/baseline.py:digits") in (
        "configs/baseline.py:digits",
        os.path.join(configs, "baseline.py") + ":digits",
    )
    own = tmp_path / "idsnn.py"
    own.write_text("")
    assert launch.resolve_config(f"{own}:digits") == f"{own}:digits"  # an existing file wins
    with pytest.raises(app.UsageError, match="built-in: baseline.py, hybrid_stdb.py, idsnn.py"):
        launch.resolve_config("nosuch.py:digits")
    assert launch._resolve_config_argv(["x", "--config", "idsnn:digits", "--workdir=w"])[2].endswith("idsnn.py:digits")
