"""Run logs: ``metrics.jsonl`` (always), TensorBoard event files (no TensorFlow), curve plots.

Every record is one JSON object per line with at least ``stage``, ``kind`` (``train`` or
``epoch``) and ``step``. A multi-stage pipeline (IDSNN: teacher, then student) writes all stages
into the one ``metrics.jsonl`` of its workdir, each under its own ``stage`` name.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import Any

from snnjax import workdir_layout
from snnjax.plotting import pyplot


def _clean(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them visible as strings
    return value


class MetricWriter:
    """Append records for one ``stage`` to ``workdir/metrics.jsonl`` and TensorBoard.

    Args:
      workdir: run directory.
      stage: name of the stage (``train``, ``teacher``, ``student``, ...).
      resume_step: when resuming from a checkpoint at this step, records of this stage logged
        after it (by the interrupted run) are dropped so the log matches the resumed run.
      tensorboard: also write TensorBoard scalars to ``workdir/tensorboard/<stage>``.
    """

    def __init__(self, workdir: str, stage: str, *, resume_step: int | None = None, tensorboard: bool = True):
        self.path = workdir_layout.metrics(workdir)
        self.stage = stage
        os.makedirs(workdir, exist_ok=True)
        self._drop_records_after(resume_step if resume_step is not None else -1)
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter  # imported lazily: optional at import time

            self._tb = SummaryWriter(workdir_layout.tensorboard(workdir, stage))

    def _drop_records_after(self, step: int) -> None:
        if not os.path.exists(self.path):
            return
        kept = [r for r in read_metrics(self.path) if r.get("stage") != self.stage or r.get("step", 0) <= step]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(tmp, self.path)

    def write(self, kind: str, step: int, **values: Any) -> dict[str, Any]:
        record = {"stage": self.stage, "kind": kind, "step": int(step)}
        record.update({k: _clean(v) for k, v in values.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(f"{kind}/{k}", v, int(step))
        return record

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


class NullWriter:
    """The writer of processes other than 0 in a multi-process run: records go nowhere."""

    def write(self, kind: str, step: int, **values: Any) -> dict[str, Any]:
        return {"kind": kind, "step": int(step), **values}

    def close(self) -> None:
        pass


def read_metrics(path: str) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file (a torn last line from a crash is skipped)."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def plot_curves(
    records: Iterable[dict[str, Any]], out_png: str, *, kd_stages: Iterable[str] = (), tet_stages: Iterable[str] = ()
) -> None:
    """Loss and accuracy per epoch for every stage in ``records``, saved as a PNG.

    The loss axis is logarithmic, so that one large value (a first epoch's test loss of a few
    hundred, say) does not flatten every other line. ``kd_stages``: stages trained with knowledge
    distillation, whose training loss is the Hinton mix of cross-entropy and KD and is labelled
    ``CE + KD`` (their test loss is plain cross-entropy, as for every stage); ``tet_stages``: stages
    trained with the TET loss, labelled ``TET`` (``TET + KD``). The epoch axes have integer ticks.
    """
    plt = pyplot()
    fig = curves_figure(records, kd_stages=kd_stages, tet_stages=tet_stages)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def curves_figure(records: Iterable[dict[str, Any]], *, kd_stages: Iterable[str] = (), tet_stages: Iterable[str] = ()):
    """The matplotlib figure of :func:`plot_curves` (axes: loss, accuracy); the caller closes it."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    kd_stages, tet_stages = set(kd_stages), set(tet_stages)
    epochs = [r for r in records if r.get("kind") == "epoch"]
    stages = sorted({r["stage"] for r in epochs})
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for stage in stages:
        rs = [r for r in epochs if r["stage"] == stage]
        ep = [r["epoch"] for r in rs]
        train_kind = ("TET" if stage in tet_stages else "CE") + (" + KD" if stage in kd_stages else "")
        # Markers: a one-epoch run has one point per line, which a line alone does not draw.
        ax_loss.plot(
            ep, [_positive(r.get("train_loss")) for r in rs], "o-", ms=4, label=f"{stage} train ({train_kind})"
        )
        ax_loss.plot(ep, [_positive(r.get("test_loss")) for r in rs], "s--", ms=4, label=f"{stage} test (CE)")
        ax_acc.plot(ep, [r.get("train_accuracy") for r in rs], "o-", ms=4, label=f"{stage} train")
        ax_acc.plot(ep, [r.get("test_accuracy") for r in rs], "s--", ms=4, label=f"{stage} test")
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="loss (log scale)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        # Records exist after whole epochs only: ticks at 2.5 or 7.5 would suggest points in between.
        # min_n_ticks=1: a one-epoch run has a single integer in view; the default (2) falls back to 0.98, 1.02.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3, which="both" if ax is ax_loss else "major")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _positive(value: Any) -> float:
    """A loss value for the log axis: missing, non-finite ("nan" strings) or <= 0 -> NaN (a gap)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) and value > 0 else math.nan


def tet_stages(summary: dict[str, Any] | None) -> list[str]:
    """Stages of a run trained with the TET loss, from its ``summary.json`` (``loss`` and ``stage``)."""
    if summary and summary.get("loss") == "tet" and summary.get("stage"):
        return [str(summary["stage"])]
    return []


def kd_stages(summary: dict[str, Any] | None) -> list[str]:
    """Stages of a run trained with KD, from its ``summary.json`` (IDSNN writes ``kd`` and ``stage``)."""
    if summary and summary.get("kd") and summary.get("stage"):
        return [str(summary["stage"])]
    return []
