"""A damaged latest checkpoint falls back to the newest one that restores, with one clean warning
line; every step is logged once; a finished run launched again prints its summary and leaves
``summary.json`` byte-identical."""

import json
import os
import re

import jax.numpy as jnp
import numpy as np
import pytest
from launch_helpers import TINY, launch

from snnjax.train import checkpoint as ckpt_lib

FAST = [*TINY, "--config.model.name=resnet18", "--config.train.epochs=1", "--config.train.log_every_steps=1"]


def _state(value: float):
    return {"w": jnp.full((3, 2), value, jnp.float32), "b": jnp.arange(4, dtype=jnp.float32) + value}


def _scramble(directory, seed=0):
    """Random bytes over every file of ``directory`` (same sizes): what a bad disk or copy leaves."""
    rng = np.random.default_rng(seed)
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            size = max(os.path.getsize(path), 16)
            with open(path, "wb") as f:
                f.write(rng.integers(0, 256, size, dtype=np.uint8).tobytes())


def _saved(tmp_path, steps):
    ckpt = ckpt_lib.Checkpointer(tmp_path / "ck", keep=5, async_save=False)
    for step in steps:
        ckpt.save(step, _state(float(step)), meta={"epoch": step}, config={})
    ckpt.close()
    return ckpt_lib.Checkpointer(tmp_path / "ck", keep=5, async_save=False)


def test_corrupt_latest_is_moved_aside_and_the_previous_one_restored(tmp_path, capsys):
    ckpt = _saved(tmp_path, [1, 2, 3])
    _scramble(tmp_path / "ck" / "3" / "state")
    step, state, meta = ckpt.restore_newest(ckpt_lib.abstract_like(_state(0.0)))
    assert step == 2 and meta == {"epoch": 2}
    np.testing.assert_array_equal(state["w"], np.full((3, 2), 2.0))
    assert sorted(os.listdir(tmp_path / "ck")) == ["1", "2", "3.corrupt"]
    assert ckpt.latest_step() == 2
    # One line: the step, the root cause's first line (the scrambled bytes decide which byte it names),
    # where the folder went, the step resumed from.
    assert re.fullmatch(
        r"warning: checkpoint step 3 did not restore \(UnicodeDecodeError: 'utf-8' codec can't decode byte "
        r"0x[0-9a-f]{2} in position \d+: invalid [a-z ]+ byte\); moved to "
        + re.escape(str(tmp_path / "ck" / "3.corrupt"))
        + r"; resuming from step 2\n",
        capsys.readouterr().err,
    )
    ckpt.close()


def _weights(seed: int):
    # 16 KiB of random floats: stored as a compressed chunk in a data file of its own (small arrays
    # are inlined into the index), which is what a damaged disk hits in a real model.
    return {"w": jnp.asarray(np.random.default_rng(seed).normal(size=(64, 64)), jnp.float32)}


def test_an_unreadable_array_gives_one_clean_warning_line(tmp_path, capsys):
    # TensorStore's failure reaches us wrapped by orbax as "Encountered error while reading array
    # index: ... See full TensorStore details: <bound method ...>" plus a multi-line spec; the
    # warning must carry the short root cause instead.
    ckpt = ckpt_lib.Checkpointer(tmp_path / "ck", keep=5, async_save=False)
    for step in (1, 2):
        ckpt.save(step, _weights(step), meta={"epoch": step}, config={})
    ckpt.wait()
    data = tmp_path / "ck" / "2" / "state" / "ocdbt.process_0" / "d"
    _scramble(max(data.iterdir(), key=lambda p: p.stat().st_size).parent)
    assert ckpt.restore_newest(ckpt_lib.abstract_like(_weights(0)))[0] == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.fullmatch(
        r"warning: checkpoint step 2 did not restore \(ValueError: [A-Z_]+: Error reading \"w/0\.0\" in OCDBT "
        r'database at local file "state/": [^\n]+\); moved to '
        + re.escape(str(tmp_path / "ck" / "2.corrupt"))
        + r"; resuming from step 1\n",
        err,
    ), err
    assert len(err) < 400 and "bound method" not in err and "tensorstore_spec" not in err
    ckpt.close()


def test_failure_reason_is_the_root_cause_first_line_without_noise_truncated():
    try:
        try:
            raise ValueError("DATA_LOSS: bad chunk " + "word " * 60 + " [tensorstore_spec='{...}']\nmore")
        except ValueError as inner:
            raise Exception("Encountered error while reading array index: (slice(0, 4, 1),). See full") from inner
    except Exception as err:
        reason = ckpt_lib.failure_reason(err)
    # The root cause, cut at a word boundary to at most 200 characters, without the spec.
    assert reason == "ValueError: DATA_LOSS: bad chunk " + " ".join(["word"] * 32) + "..."
    assert ckpt_lib.failure_reason(KeyError()) == "KeyError"
    nested = OSError("cannot read /runs/ck/7/state/_METADATA:\n  errno 5")
    assert ckpt_lib.failure_reason(nested, "/runs/ck/7") == "OSError: cannot read state/_METADATA"


def test_read_only_fallback_moves_nothing_and_all_corrupt_raises_without_moving(tmp_path):
    ckpt = _saved(tmp_path, [1, 2])
    _scramble(tmp_path / "ck" / "2" / "state")
    assert ckpt.restore_newest(ckpt_lib.abstract_like(_state(0.0)), move_aside=False)[0] == 1
    assert sorted(os.listdir(tmp_path / "ck")) == ["1", "2"]
    _scramble(tmp_path / "ck" / "1" / "state", seed=1)
    with pytest.raises(ckpt_lib.CheckpointError, match=r"ck/2 .*Fix:"):
        ckpt.restore_newest(ckpt_lib.abstract_like(_state(0.0)))
    assert sorted(os.listdir(tmp_path / "ck")) == ["1", "2"]  # none restores: maybe another config; keep all
    ckpt.close()


def test_stale_tmp_folders_are_removed(tmp_path):
    stage = tmp_path / "checkpoints" / "train"
    (stage / "7.orbax-checkpoint-tmp-123" / "state").mkdir(parents=True)
    (stage / "5").mkdir()
    removed = ckpt_lib.remove_stale_tmp(str(tmp_path))
    assert removed == [str(stage / "7.orbax-checkpoint-tmp-123")] and os.listdir(stage) == ["5"]


@pytest.fixture(scope="module")
def interrupted_then_resumed(tmp_path_factory):
    """A digits run stopped at step 13 (checkpoints 5 and 10, steps 1-13 logged), its step-10
    checkpoint scrambled, then resumed to the end (22 steps)."""
    wd = tmp_path_factory.mktemp("fallback") / "run"
    args = ("configs/teacher.py:digits", wd, *FAST, "--config.train.checkpoint_every_steps=5")
    stopped = launch(*args, "--config.train.stop_after_steps=13", check=False)
    assert stopped.returncode == 3, stopped.stderr[-2000:]
    logged = [r["step"] for r in _records(wd) if r["kind"] == "train"]
    assert logged == list(range(1, 14))  # the interrupted run logged past its last checkpoint (10)
    _scramble(wd / "checkpoints" / "train" / "10" / "state")
    resumed = launch(*args, "--config.train.progress_bar=True")
    return wd, resumed, args


def _records(wd):
    return [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]


def test_resume_falls_back_past_a_corrupt_latest_checkpoint(interrupted_then_resumed):
    wd, resumed, _ = interrupted_then_resumed
    ckdir = wd / "checkpoints" / "train"
    assert (ckdir / "10.corrupt").is_dir()  # moved aside, never deleted
    warnings = [line for line in resumed.stderr.splitlines() if line.startswith("warning: checkpoint")]
    assert len(warnings) == 1
    assert re.fullmatch(
        r"warning: checkpoint step 10 did not restore \(\w+: [^<\n]{1,200}\); moved to "
        + re.escape(str(ckdir / "10.corrupt"))
        + "; resuming from step 5",
        warnings[0],
    ), warnings[0]
    assert f"resumed from {ckdir / '5'} (step 5" in resumed.stderr
    assert json.loads((wd / "summary.json").read_text())["steps"] == 22


def test_progress_to_a_log_file_is_plain_lines(interrupted_then_resumed):
    # progress_bar=True with stderr captured (not a terminal): no tqdm redraws, no escape codes,
    # and one line at the end of the epoch with its metrics (mid-epoch lines only every 30 s or more).
    _, resumed, _ = interrupted_then_resumed
    assert "\r" not in resumed.stderr and "\x1b" not in resumed.stderr
    assert all(line.strip() for line in resumed.stderr.splitlines())
    progress = [line for line in resumed.stderr.splitlines() if line.startswith("train: step")]
    number = r"\d+\.\d{3}"
    end = rf"train: step 22/22 \(100%\), epoch 1/1, loss {number}, train {number}, test {number}"
    assert re.fullmatch(end, progress[-1]), progress
    assert all(re.fullmatch(r"train: step \d+/22 \(\d+%\), epoch 0\.\d/1", line) for line in progress[:-1])


def test_every_step_is_logged_once_after_resume(interrupted_then_resumed):
    # Fails when MetricWriter._drop_records_after keeps the records logged after the restored step:
    # steps 6-13 would then appear twice.
    wd, _, _ = interrupted_then_resumed
    records = _records(wd)
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, 23))
    assert [r["step"] for r in records if r["kind"] == "epoch"] == [22]


def test_finished_run_launched_again_prints_its_summary_and_changes_nothing(interrupted_then_resumed):
    wd, _, args = interrupted_then_resumed
    files = ("summary.json", "metrics.jsonl", "run_config.json")
    before = {name: (wd / name).read_bytes() for name in files}
    summary = json.loads(before["summary.json"])
    assert summary["environment"]["packages"]["jax"] and "git" in summary["environment"]
    again = launch(*args)
    assert "finished earlier" in again.stderr and "resumed from" not in again.stderr
    assert f"{summary['best_test_accuracy']:.4f}" in again.stderr
    assert {name: (wd / name).read_bytes() for name in files} == before
    assert not (wd / ".snnjax.lock").exists()  # released at exit
