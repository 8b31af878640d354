"""``curves.png``: log-scale loss axis, the KD student's training loss labelled CE + KD."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import pytest

from snnjax import workdir_layout
from snnjax.train import metric_writer
from snnjax.train import run_outputs as common


def _records():
    # A digits IDSNN run: the student's first test loss is ~490, the rest ~0.1-2.
    recs = []
    for e, (tr, te) in enumerate([(1.9, 1.2), (0.6, 0.4), (0.3, 0.2)], start=1):
        recs.append(
            dict(
                stage="teacher",
                kind="epoch",
                step=e * 10,
                epoch=e,
                train_loss=tr,
                test_loss=te,
                train_accuracy=0.5 + 0.1 * e,
                test_accuracy=0.55 + 0.1 * e,
            )
        )
    for e, (tr, te) in enumerate([(2.5, 490.0), (0.9, 0.5), (0.4, "nan")], start=1):
        recs.append(
            dict(
                stage="student",
                kind="epoch",
                step=e * 10,
                epoch=e,
                train_loss=tr,
                test_loss=te,
                train_accuracy=0.4 + 0.1 * e,
                test_accuracy=0.45 + 0.1 * e,
            )
        )
    recs.append(dict(stage="student", kind="train", step=5, loss=3.0))  # not an epoch record: ignored
    return recs


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_loss_axis_is_log_and_kd_student_labelled():
    fig = metric_writer.curves_figure(_records(), kd_stages=["student"])
    try:
        ax_loss, ax_acc = fig.axes
        assert ax_loss.get_yscale() == "log"
        assert ax_acc.get_yscale() == "linear"
        assert _legend(ax_loss) == [
            "student train (CE + KD)",
            "student test (CE)",
            "teacher train (CE)",
            "teacher test (CE)",
        ]
        # The 490 stays on the plot, and the small losses are not squashed: the log axis spans
        # several decades instead of a linear [0, 500].
        lo, hi = ax_loss.get_ylim()
        assert lo < 0.2 and hi > 490
        assert math.log10(hi / lo) > 3
        # The non-finite test loss ("nan" string in metrics.jsonl) is a gap, not a crash.
        test_line = ax_loss.get_lines()[1]
        ys = list(test_line.get_ydata())
        assert ys[:2] == [490.0, 0.5] and math.isnan(ys[2])
    finally:
        plt.close(fig)


def test_a_tet_stage_is_labelled_tet_with_or_without_kd():
    fig = metric_writer.curves_figure(_records(), kd_stages=["student"], tet_stages=["student"])
    try:
        assert _legend(fig.axes[0])[:3] == ["student train (TET + KD)", "student test (CE)", "teacher train (CE)"]
    finally:
        plt.close(fig)
    fig = metric_writer.curves_figure(_records(), tet_stages=["teacher"])
    try:
        assert _legend(fig.axes[0])[2] == "teacher train (TET)"
    finally:
        plt.close(fig)
    assert metric_writer.tet_stages(dict(stage="student", loss="tet")) == ["student"]
    assert metric_writer.tet_stages(dict(stage="student", loss="ce")) == [] == metric_writer.tet_stages(None)


def test_without_kd_every_training_loss_is_ce():
    fig = metric_writer.curves_figure(_records())
    try:
        assert all("KD" not in label for label in _legend(fig.axes[0]))
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    "summary, expected",
    [
        (dict(stage="student", kd=True), ["student"]),
        (dict(stage="student", kd=False), []),
        (dict(stage="train"), []),
        (None, []),
    ],
)
def test_kd_stages_from_summary(summary, expected):
    assert metric_writer.kd_stages(summary) == expected


def test_finish_run_writes_curves_with_kd_label(tmp_path, monkeypatch):
    path = tmp_path / workdir_layout.METRICS_FILE
    path.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    seen = {}
    real = metric_writer.curves_figure

    def spy(records, *, kd_stages=(), tet_stages=()):
        seen["kd_stages"], seen["tet_stages"] = list(kd_stages), list(tet_stages)
        return real(records, kd_stages=kd_stages, tet_stages=tet_stages)

    monkeypatch.setattr(metric_writer, "curves_figure", spy)
    common.finish_run(str(tmp_path), dict(stage="student", kd=True, loss="tet", best_test_accuracy=0.75))
    assert seen == {"kd_stages": ["student"], "tet_stages": ["student"]}
    assert (tmp_path / "curves.png").stat().st_size > 1000


@pytest.mark.parametrize("epochs", [1, 3, 20])
def test_epoch_ticks_are_integers(epochs):
    # Accuracy and loss exist after whole epochs only; matplotlib's default locator put ticks at
    # 2.5, 7.5, ... for 20 epochs (1.25, 1.5, ... for 3; 0.96, 0.98, ... for 1).
    recs = [
        dict(stage="train", kind="epoch", step=e, epoch=e, train_loss=1 / e, test_loss=1 / e, train_accuracy=0.5)
        for e in range(1, epochs + 1)
    ]
    fig = metric_writer.curves_figure(recs)
    try:
        fig.canvas.draw()
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(fig)
