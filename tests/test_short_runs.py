"""Quick trials: one key shortens every stage; one-epoch curves are visible; evaluation reports progress."""

import importlib.util
import os

import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import config as config_lib
from snnjax.train import evaluate, metric_writer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(name, preset):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(preset)


@pytest.mark.parametrize(
    "name,stages",
    [
        ("idsnn", ["teacher.train.epochs", "train.epochs"]),
        ("hybrid_stdb", ["ann.train.epochs", "train.epochs"]),
        ("pretrain", ["pretrain.train.epochs", "train.epochs"]),
    ],
)
def test_epochs_all_sets_every_stage(name, stages):
    cfg = _config(name, "digits")
    before = cfg.to_dict()
    assert config_lib.apply_epochs_all(cfg) == [] and cfg.to_dict() == before  # 0: each stage's own
    cfg.epochs_all = 3
    assert config_lib.apply_epochs_all(cfg) == stages
    for key in stages:
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == 3
    cfg.epochs_all = -1
    with pytest.raises(ValueError, match="config.epochs_all=-1"):
        config_lib.apply_epochs_all(cfg)


def test_one_epoch_curves_draw_a_marker_per_point():
    records = [
        {
            "stage": "student",
            "kind": "epoch",
            "epoch": 1,
            "train_loss": 1.2,
            "test_loss": 1.5,
            "train_accuracy": 0.4,
            "test_accuracy": 0.5,
        },
    ]
    fig = metric_writer.curves_figure(records)
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 4
    for line in lines:
        assert len(line.get_xdata()) == 1 and line.get_marker() not in ("None", None, "", " ")


def test_per_batch_progress_gives_the_same_sums_and_one_call_per_batch():
    values = jnp.arange(10, dtype=jnp.float32) * 0.1
    batch = lambda i: {"x": values[i], "count": jnp.float32(2.0)}
    calls = []
    with_progress = evaluate.accumulate(batch, 10, on_batch=lambda: calls.append(1))
    assert with_progress == evaluate.accumulate(batch, 10)
    assert len(calls) == 10
    np.testing.assert_allclose(with_progress["x"], float(np.sum(np.arange(10, dtype=np.float32) * 0.1)) / 20, rtol=1e-6)
