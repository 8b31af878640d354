"""End to end: an image folder converted once with the command line, trained from its records by launch.py,
killed mid-epoch and resumed to the same parameters as an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from launch_helpers import ROOT, TINY, final_params, launch
from PIL import Image

pytestmark = pytest.mark.slow

CLASSES = ("circle", "square", "stripes")


def _image(kind: str, rng: np.random.Generator) -> np.ndarray:
    """16x16 RGB: a bright shape of class `kind` at a random place on a noisy dark background."""
    image = rng.integers(0, 60, (16, 16, 3)).astype(np.uint8)
    r, c = rng.integers(3, 13, 2)
    rows, cols = np.mgrid[0:16, 0:16]
    if kind == "circle":
        mask = (rows - r) ** 2 + (cols - c) ** 2 <= 9
    elif kind == "square":
        mask = (abs(rows - r) <= 2) & (abs(cols - c) <= 2)
    else:
        mask = (rows % 4) < 2
    image[mask] = rng.integers(180, 256, 3)
    return image


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for kind in CLASSES:
        (root / "src" / kind).mkdir(parents=True)
        for i in range(200):
            Image.fromarray(_image(kind, rng)).save(root / "src" / kind / f"{i}.jpg", quality=90)
    out = root / "records"
    cmd = [
        sys.executable,
        "-m",
        "snnjax.data.write_records",
        "--src",
        str(root / "src"),
        "--out",
        str(out),
        "--test-fraction",
        "0.2",
        "--shard-size",
        "100",
        "--no-progress",
    ]
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True)
    return out


def _args(records):
    # 480 train images / batch 64 = 7 steps per epoch; 8x8 random-resized crops + flips on the host.
    return [
        *TINY,
        f"--config.data.name=records:{records}",
        "--config.data.image_size=8",
        "--config.data.crop_padding=0",
        "--config.data.workers=2",
        "--config.train.epochs=2",
        "--config.train.checkpoint_every_steps=5",
        "--config.model.time_steps=2",
        "--config.train.log_every_steps=1",
    ]


def test_image_folder_trains_from_records_and_resumes_mid_epoch_exactly(records, tmp_path):
    ref = tmp_path / "uninterrupted"
    launch("configs/baseline.py:digits", ref, *_args(records))
    summary = json.loads((ref / "summary.json").read_text())
    assert summary["dataset"] == f"records:{records}" and summary["steps"] == 14

    run = tmp_path / "killed"
    stopped = launch(
        "configs/baseline.py:digits", run, *_args(records), "--config.train.stop_after_steps=10", check=False
    )
    assert stopped.returncode == 3  # stopped after step 10 of 14: mid epoch 1, checkpoint at 10
    out = launch("configs/baseline.py:digits", run, *_args(records))
    assert "resumed from" in out.stderr
    step_a, a = final_params(ref)
    step_b, b = final_params(run)
    assert step_a == step_b == 14
    import jax

    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    steps_ref = {r["step"]: r["loss"] for r in map(json.loads, open(ref / "metrics.jsonl")) if "loss" in r}
    steps_run = {r["step"]: r["loss"] for r in map(json.loads, open(run / "metrics.jsonl")) if "loss" in r}
    assert steps_ref == steps_run and len(steps_ref) == 14  # every step's loss, before and after the kill
