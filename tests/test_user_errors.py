"""Bad inputs from the command line end in one or two lines, the right exit code and no empty workdir.

Each case is what a new user tried (issue 26): a misspelt key, a wrong type, an unknown preset, a
dataset that is not there, a truncated IDX file, an unwritable workdir, a non-finite loss.
"""

import gzip
import os
import struct
import types

import numpy as np
import pytest
from launch_helpers import TINY, launch

from snnjax import user_errors, workdir_layout

TEACHER = "configs/teacher.py:digits"


def _lines(proc):
    return [line for line in proc.stderr.splitlines() if line.strip()]


def _assert_short(proc, code, *needles, max_lines=2):
    lines = _lines(proc)
    assert proc.returncode == code, proc.stderr[-3000:]
    assert 1 <= len(lines) <= max_lines, proc.stderr[-3000:]
    assert lines[0].startswith("snnjax: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and "\\n" not in lines[0]


def test_misspelt_key_names_the_override_and_the_key_it_meant(tmp_path):
    proc = launch(TEACHER, tmp_path / "run", *TINY, "--config.train.epohcs=3", check=False)
    _assert_short(proc, user_errors.EXIT_USAGE, "--config.train.epohcs=3", 'Did you mean "epochs"', max_lines=1)
    assert not (tmp_path / "run").exists()


def test_wrong_type_and_unknown_preset_are_usage_errors(tmp_path):
    proc = launch(TEACHER, tmp_path / "run", "--config.train.epochs=abc", check=False)
    _assert_short(proc, user_errors.EXIT_USAGE, "--config.train.epochs=abc", "invalid literal for int()", max_lines=1)
    proc = launch("configs/teacher.py:nopreset", tmp_path / "run", check=False)
    _assert_short(proc, user_errors.EXIT_USAGE, "unknown preset 'nopreset'", "'digits'", max_lines=1)
    assert not (tmp_path / "run").exists()


def test_missing_dataset_is_named_and_leaves_no_workdir(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    proc = launch(
        TEACHER,
        tmp_path / "run",
        *TINY,
        "--config.data.name=mnist",
        "--config.data.download=False",
        f"--config.data.data_dir={empty}",
        check=False,
    )
    _assert_short(
        proc, user_errors.EXIT_USAGE, f"--config.data.data_dir={empty} does not hold the four mnist files", "Fix: put "
    )
    assert not (tmp_path / "run").exists()  # the run never started: no empty workdir left behind


def _idx(path, array, dtype_code, truncate_to=None):
    raw = struct.pack(">BBBB", 0, 0, dtype_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(raw[:truncate_to] if truncate_to else raw)


def test_truncated_idx_file_is_named_with_verbose_traceback(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    images, labels = np.zeros((20, 28, 28)), np.arange(20) % 10
    _idx(data / "train-images-idx3-ubyte.gz", images, 0x08, truncate_to=1000)  # cut inside the pixels
    _idx(data / "train-labels-idx1-ubyte.gz", labels, 0x08)
    _idx(data / "t10k-images-idx3-ubyte.gz", images, 0x08)
    _idx(data / "t10k-labels-idx1-ubyte.gz", labels, 0x08)
    args = (TEACHER, tmp_path / "run", *TINY, "--config.data.name=fashion_mnist", f"--config.data.data_dir={data}")
    proc = launch(*args, "--config.data.download=False", check=False)
    _assert_short(proc, user_errors.EXIT_FAILURE, "train-images-idx3-ubyte.gz")
    assert "(full traceback: " in _lines(proc)[1]
    assert not (tmp_path / "run").exists()
    verbose = launch(*args, "--config.data.download=False", "--verbose", check=False)
    assert verbose.returncode == user_errors.EXIT_FAILURE and "Traceback (most recent call last)" in verbose.stderr


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = launch(TEACHER, blocker / "run", *TINY, check=False)
    _assert_short(proc, user_errors.EXIT_USAGE, f"--workdir={blocker / 'run'} is not writable", "Fix:")


@pytest.mark.slow
def test_nonfinite_loss_is_a_run_failure_with_its_traceback_in_the_workdir_log(tmp_path):
    wd = tmp_path / "run"
    proc = launch(TEACHER, wd, *TINY, "--config.model.name=resnet18", "--config.optim.lr=1e30", check=False)
    _assert_short(proc, user_errors.EXIT_FAILURE, "non-finite loss or gradient at step", "config.train.nonfinite=skip")
    log = wd / workdir_layout.LOG_FILE
    assert f"(full traceback: {log};" in _lines(proc)[1]
    assert "Traceback (most recent call last)" in log.read_text() and "NonFiniteLossError" in log.read_text()


def test_one_line_unescapes_and_cuts():
    assert user_errors.one_line("'\\'k\\'\\nDid you mean \"x\"?'") == "'k' Did you mean \"x\"?"
    embedded = "flag --config=a.py: Error:\n\nTraceback (most recent call last):\n  File x\nValueError: bad preset\n"
    assert user_errors.one_line(embedded) == "ValueError: bad preset"
    assert len(user_errors.one_line("x" * 5000)) == user_errors.MAX_MESSAGE_CHARS


def test_full_disk_is_named_however_it_arrives():
    import errno

    efbig = OSError(errno.EFBIG, "File too large", "/w/metrics.jsonl")
    code, message = user_errors.classify(efbig, started=True)
    assert code == user_errors.EXIT_FAILURE and message.startswith(
        "the disk is full (File too large: /w/metrics.jsonl)"
    )
    # What orbax/TensorStore raise when a checkpoint write hits a file-size limit (seen in benchmarks/faults.py).
    tensorstore = ValueError(
        'OUT_OF_RANGE: Error writing "w/0" in OCDBT database at local file "/w/checkpoints/train/3.orbax-checkpoint-tmp/": '
        "Failed to write 134091 bytes to file 4: File too large [os_error_code='27']"
    )
    code, message = user_errors.classify(RuntimeError("save failed").with_traceback(None), started=True) or (0, "")
    assert code == 0  # an unrelated error is not taken for a full disk
    wrapped = RuntimeError("save failed")
    wrapped.__cause__ = tensorstore
    code, message = user_errors.classify(wrapped, started=True)
    assert code == user_errors.EXIT_FAILURE and "File too large writing /w/checkpoints/train/3.orbax" in message


@pytest.mark.slow
def test_disk_filling_up_during_a_save_ends_in_two_lines(tmp_path):
    import subprocess

    from launch_helpers import ROOT, python_with_file_size_cap

    wd = tmp_path / "run"
    # every file of the run capped below the size of a checkpoint's largest file
    cmd = [
        *python_with_file_size_cap(150_000),
        os.path.join(ROOT, "launch.py"),
        f"--config={TEACHER}",
        f"--workdir={wd}",
    ]
    cmd += TINY
    cmd += ["--config.model.name=resnet18", "--config.train.epochs=1", "--config.train.checkpoint_every_steps=3"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    # The launcher's error once, with the fix, exit 1, and nothing else: no orbax/asyncio report of the
    # failed writes and no "Event loop is closed" from the writes that finish after orbax's save loop closed.
    assert proc.returncode == user_errors.EXIT_FAILURE, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "snnjax: error: " in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "the disk is full (File too large" in errors[0] and "run the same command again" in errors[0]
    assert "OUT_OF_RANGE" not in proc.stderr.replace(errors[0], "") and "Task exception" not in proc.stderr
    rest = [line for line in proc.stderr.splitlines() if line.strip() and line != errors[0]]
    assert len(rest) == 1 and rest[0].startswith("(full traceback:"), proc.stderr[-3000:]


def _unraisable(err: BaseException):
    return types.SimpleNamespace(exc_type=type(err), exc_value=err, exc_traceback=err.__traceback__, object=None)


def test_callbacks_into_a_closed_event_loop_are_not_echoed_and_other_unraisables_are():
    import asyncio

    from snnjax import launch as launch_lib

    loop = asyncio.new_event_loop()
    loop.close()
    try:
        loop.call_soon_threadsafe(print)
    except RuntimeError as err:
        closed = err
    seen = []
    hook = launch_lib._without_closed_loop_callbacks(seen.append)
    hook(_unraisable(closed))
    assert seen == []
    try:
        raise RuntimeError("Event loop is closed")  # same text, not from asyncio: still reported
    except RuntimeError as err:
        hook(_unraisable(err))
    hook(_unraisable(ValueError("x")))
    assert [type(u.exc_value) for u in seen] == [RuntimeError, ValueError]
