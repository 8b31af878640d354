"""Progress output: a tqdm bar on a terminal; plain lines (no carriage returns, no escape codes) when
stderr goes to a file; nothing with ``config.train.progress_bar=False``."""

from __future__ import annotations

import io

import ml_collections
import numpy as np
import pytest
from PIL import Image

from snnjax import progress as progress_lib
from snnjax.data.write_records import convert
from snnjax.train import loop


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _run_epochs(bar, epochs: int, steps_per_epoch: int, tick=None) -> None:
    """What the training loop does: one update per step, the epoch's metrics after its last step."""
    for epoch in range(1, epochs + 1):
        for _ in range(steps_per_epoch):
            if tick is not None:
                tick()
            bar.update(1)
        bar.set_postfix_str(f"loss 0.{epoch}00, train 0.{epoch}50")
    bar.close()


def _assert_plain(text: str) -> None:
    assert "\r" not in text and "\x1b" not in text
    assert all(line.strip() for line in text.splitlines())  # no blank lines


def test_a_log_file_gets_a_line_at_every_tenth_of_an_epoch_and_at_its_end():
    out = io.StringIO()
    bar = progress_lib.progress("teacher", 44, epoch_units=22, stream=out, min_interval_s=0)
    assert isinstance(bar, progress_lib.LineProgress)
    _run_epochs(bar, 2, 22)
    text = out.getvalue()
    _assert_plain(text)
    lines = text.splitlines()
    # 22 steps: a line when step * 10 // 22 increases (steps 3, 5, ..., 20), then the epoch's end.
    assert len(lines) == 20
    assert lines[:2] == ["teacher: step 3/44 (6%), epoch 0.1/2", "teacher: step 5/44 (11%), epoch 0.2/2"]
    # The end line waits for the epoch's metrics; mid-epoch lines do not repeat the last epoch's.
    assert lines[9] == "teacher: step 22/44 (50%), epoch 1/2, loss 0.100, train 0.150"
    assert lines[10] == "teacher: step 25/44 (56%), epoch 1.1/2"
    assert lines[19] == "teacher: step 44/44 (100%), epoch 2/2, loss 0.200, train 0.250"


def test_mid_epoch_lines_are_at_least_min_interval_apart_and_epoch_ends_always_print():
    now = [0.0]

    def tick() -> None:
        now[0] += 10.0  # every step takes 10 s

    out = io.StringIO()
    bar = progress_lib.LineProgress("train", 22, epoch_units=22, stream=out, min_interval_s=30, clock=lambda: now[0])
    _run_epochs(bar, 1, 22, tick)
    steps = [int(line.split()[2].split("/")[0]) for line in out.getvalue().splitlines()]
    # Tenths are passed at steps 3, 5, 7, 9, 11, 14, 16, 18, 20 (t = 10 s x step); those 30 s or more
    # after the previous line print, and the end of the epoch (22) prints regardless.
    assert steps == [3, 7, 11, 14, 18, 22]


def test_a_terminal_gets_the_tqdm_bar():
    from tqdm.std import tqdm

    out = _Terminal()
    bar = progress_lib.progress("train", 22, epoch_units=22, stream=out)
    assert isinstance(bar, tqdm)
    _run_epochs(bar, 1, 22)
    assert "\r" in out.getvalue() and "train" in out.getvalue()


def test_a_transient_bar_prints_nothing_in_a_log_file_and_disabled_progress_prints_nothing():
    out = io.StringIO()
    for bar in (
        progress_lib.progress("train evaluating", 5, unit="batch", transient=True, stream=out),
        progress_lib.progress("train", 22, epoch_units=22, enabled=False, stream=_Terminal()),
    ):
        assert bar.disable  # the evaluator then skips its per-batch callback
        _run_epochs(bar, 1, 5)
    assert out.getvalue() == ""


@pytest.mark.parametrize("flag, expected", [(False, "NullProgress"), (True, "LineProgress")])
def test_the_loop_follows_config_train_progress_bar(flag, expected, capsys):
    config = ml_collections.ConfigDict({"train": {"progress_bar": flag}})
    bar = loop._progress(config, "train", 0, 4, epoch_units=2)  # stderr is captured: not a terminal
    assert type(bar).__name__ == expected
    _run_epochs(bar, 2, 2)
    err = capsys.readouterr().err
    assert err == (
        ""
        if not flag
        else "train: step 2/4 (50%), epoch 1/2, loss 0.100, train 0.150\n"
        "train: step 4/4 (100%), epoch 2/2, loss 0.200, train 0.250\n"
    )


def test_write_records_reports_plain_lines_to_a_log_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("ant", "bee"):
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(tmp_path / "src" / name / f"{i}.png")
    convert(tmp_path / "src", tmp_path / "out", test_fraction=0.34, progress=True)
    err = capsys.readouterr().err
    _assert_plain(err)
    assert err == "write_records src: img 6/6 (100%)\n"
