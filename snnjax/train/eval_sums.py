"""The one evaluation loop itself: per-batch metric sums over a test split, divided by the example count.

:func:`accumulate` is re-exported by :mod:`snnjax.train.evaluate` (where every evaluation goes
through it) and used by :mod:`snnjax.train.streamed`'s evaluator; it lives here, below both, so that
neither imports the other back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax

Sums = Mapping[str, Any]  # per-batch sums, with the number of real examples under "count"


def accumulate(
    batch_sums: Callable[[int], Sums], num_batches: int, *, on_batch: Callable[[], Any] | None = None
) -> dict[str, float]:
    """``{name: sum over batches / total count}`` for every name ``batch_sums(i)`` returns but ``count``.

    The batches are all dispatched first and fetched from the devices once. With ``on_batch`` (e.g. a
    progress bar's ``update``), each batch is fetched as the next one runs and ``on_batch()`` is called
    after it: the same sums in the same order, so the same result.
    """
    if on_batch is None:
        sums = jax.device_get([batch_sums(i) for i in range(num_batches)])
    else:
        sums, in_flight = [], batch_sums(0) if num_batches else None
        for i in range(num_batches):
            following = batch_sums(i + 1) if i + 1 < num_batches else None  # dispatched before we wait
            sums.append(jax.device_get(in_flight))
            on_batch()
            in_flight = following
    count = sum(float(s["count"]) for s in sums)
    return {k: sum(float(s[k]) for s in sums) / count for k in sums[0] if k != "count"}
