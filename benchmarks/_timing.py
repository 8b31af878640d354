"""Timing loop shared by ``train_step.py`` and ``spikingjelly_step.py`` (both interpreters import it).

``timed_steps(one_step, warmup, steps, serve)`` runs ``warmup`` untimed steps, then either ``steps``
timed steps (the default) or, with ``serve=True``, one timed step per ``step`` line on stdin until
``quit`` (``compare.py --interleave step`` drives two such processes in turn, so that the two
frameworks alternate step by step and share whatever load the machine has). Served mode prints
``READY`` after the warm-up and one JSON line ``{"wall": s, "cpu": s}`` per step.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable


def timed_steps(one_step: Callable[[], float], warmup: int, steps: int, serve: bool = False):
    """``(wall_times, cpu_times, last_loss)`` of the timed steps (CPU = all threads of the process)."""
    loss = float("nan")
    for _ in range(warmup):
        loss = one_step()
    times, cpu_times = [], []

    def timed():
        t0, c0 = time.perf_counter(), time.process_time()
        value = one_step()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        return value

    if not serve:
        for _ in range(steps):
            loss = timed()
        return times, cpu_times, loss
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd == "step":
            loss = timed()
            print(json.dumps(dict(wall=times[-1], cpu=cpu_times[-1])), flush=True)
    return times, cpu_times, loss
