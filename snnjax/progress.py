"""Progress output: a tqdm bar on a terminal, plain periodic lines when the output goes to a file.

A tqdm bar redraws itself with carriage returns and terminal escape codes; sent to a file
(``launch.py ... > log 2>&1``) those become hundreds of garbled or blank lines. So
:func:`progress` picks by where the output goes:

- a terminal (or a Jupyter kernel, where ``tqdm.auto`` draws a widget): the tqdm bar;
- anything else: :class:`LineProgress`, one plain line at each tenth of an epoch (at most one every
  ``min_interval_s`` seconds, so that short epochs do not flood the log) and one at the end of
  every epoch, with the metrics of that epoch::

      teacher: step 66/440 (15%), epoch 3/20, loss 0.512, train 0.843, test 0.861

  Transient bars (``transient=True``, e.g. the test pass of every epoch) print nothing there;
- ``enabled=False`` (``config.train.progress_bar=False``, or a process other than 0): nothing.

Every object returned has tqdm's ``update``, ``set_postfix_str``, ``close``, ``disable`` and works as
a context manager, so callers do not care which one they got.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

MIN_INTERVAL_S = 30.0  # between two mid-epoch lines; epoch ends always print
LINES_PER_EPOCH = 10  # mid-epoch lines at every 1/10 of an epoch


class NullProgress:
    """No output at all (progress disabled, another process, or a transient bar in a log file)."""

    disable = True

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "") -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LineProgress:
    """Plain progress lines for a non-terminal stream (a log file, a pipe).

    Args:
      desc: what progresses (the stage name, ``write_records mnist``); starts every line.
      total: units to do.
      initial: units already done (a resumed run).
      unit: name of a unit in the lines (``step``, ``img``).
      epoch_units: units per epoch; lines then name the epoch, and a line ends every epoch (default:
        the whole ``total`` is one period and no epoch is named).
      stream: where the lines go (default ``sys.stderr`` at the time of writing).
      min_interval_s: least seconds between two mid-epoch lines.
      clock: seconds, monotonic (injectable for tests).
    """

    disable = False

    def __init__(
        self,
        desc: str,
        total: int,
        *,
        initial: int = 0,
        unit: str = "step",
        epoch_units: int | None = None,
        stream: TextIO | None = None,
        min_interval_s: float = MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.desc, self.total, self.n, self.unit = desc, int(total), int(initial), unit
        self.period = max(1, int(epoch_units or total or 1))
        self._name_epochs = epoch_units is not None
        self._stream, self._min_interval_s, self._clock = stream, min_interval_s, clock
        self._postfix = ""
        self._end_pending = False  # the period just ended; its line waits for the epoch's metrics
        self._last_line_at = clock()

    def _mark(self, n: int) -> tuple[int, int]:
        """(period, tenth of it) that position ``n`` is in: a line is due when this increases."""
        return n // self.period, (n % self.period) * LINES_PER_EPOCH // self.period

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` units; write a line when a tenth of an epoch is passed (and time allows)."""
        self._flush_end()
        old, self.n = self.n, self.n + n
        if self._mark(self.n) <= self._mark(old):
            return
        if self.n % self.period == 0 or self.n >= self.total:
            # Deferred to set_postfix_str (or the next update, or close): the caller evaluates the
            # epoch after its last step, and the end line should carry those metrics.
            self._end_pending = True
        elif self._clock() - self._last_line_at >= self._min_interval_s:
            self._write()

    def set_postfix_str(self, s: str = "") -> None:
        """Metrics of the epoch that just ended (tqdm's postfix); writes its pending end line."""
        self._postfix = s
        self._flush_end()

    def close(self) -> None:
        self._flush_end()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _flush_end(self) -> None:
        if self._end_pending:
            self._end_pending = False
            self._write()

    def line(self) -> str:
        """The line for the current position: desc, units done/total (percent), epoch, and at an
        epoch's end its metrics (mid-epoch lines leave out the metrics of the previous epoch)."""
        pct = 100 * self.n // self.total if self.total else 100
        parts = [f"{self.desc}: {self.unit} {self.n}/{self.total} ({pct}%)"]
        if self._name_epochs:
            epoch = self.n / self.period
            # Rounded down: 2.96 epochs is not "3.0" while epoch 3 is still running.
            shown = f"{epoch:.0f}" if self.n % self.period == 0 else f"{int(epoch * 10) / 10:.1f}"
            parts.append(f"epoch {shown}/{self.total / self.period:g}")
        if self._postfix and self.n % self.period == 0:  # the metrics are of the epoch that just ended
            parts.append(self._postfix)
        return ", ".join(parts)

    def _write(self) -> None:
        stream = sys.stderr if self._stream is None else self._stream
        stream.write(self.line() + "\n")
        stream.flush()
        self._last_line_at = self._clock()


def is_interactive(stream: TextIO) -> bool:
    """Whether ``stream`` shows a redrawn bar well: a terminal, or any stream inside a Jupyter kernel."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress(
    desc: str,
    total: int,
    *,
    initial: int = 0,
    unit: str = "step",
    epoch_units: int | None = None,
    transient: bool = False,
    enabled: bool = True,
    stream: TextIO | None = None,
    min_interval_s: float = MIN_INTERVAL_S,
) -> Any:
    """A progress reporter for ``total`` units (see the module docstring for which kind).

    Args:
      desc, total, initial, unit, epoch_units, min_interval_s: as for :class:`LineProgress`.
      transient: the bar disappears when done (tqdm ``leave=False``); no lines in a log file.
      enabled: False means no output at all.
      stream: where to write (default ``sys.stderr``); decides between bar and lines.
    """
    if not enabled:
        return NullProgress()
    stream = sys.stderr if stream is None else stream
    if is_interactive(stream):
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit=unit,
            leave=not transient,
            dynamic_ncols=True,
            file=stream,
        )
    if transient:
        return NullProgress()
    return LineProgress(
        desc, total, initial=initial, unit=unit, epoch_units=epoch_units, stream=stream, min_interval_s=min_interval_s
    )
