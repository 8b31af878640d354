"""The CI form of ``benchmarks/faults.py``: real ``kill -9`` (one of them mid-checkpoint-write) and a
corrupt checkpoint file, each followed by the same command; the run must end bitwise equal to an
uninterrupted one, with every step logged once and no complete checkpoint lost."""

import importlib.util
import os
import random

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _faults():
    spec = importlib.util.spec_from_file_location("faults", os.path.join(ROOT, "benchmarks", "faults.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_kills_and_a_corrupt_checkpoint_file_are_survived_bitwise(tmp_path):
    faults = _faults()
    ref = faults.Reference(str(tmp_path))
    chain = faults.kill_chain(ref, str(tmp_path), 2, random.Random(1))
    assert chain["kills"] >= 1 and chain["bitwise"] == 1 and chain["twice"] == 0 and chain["lost"] == 0, chain
    base = faults.stopped_run(str(tmp_path), "stopped")
    corrupt = faults.corrupt_trial(ref, base, str(tmp_path), "state/ocdbt.process_0/d/*", seed=0)
    assert corrupt["files"] >= 1 and corrupt["moved_aside"] == 1, corrupt
    assert corrupt["bitwise"] == 1 and corrupt["twice"] == 0 and corrupt["lost"] == 0, corrupt
