"""End to end: the IDSNN pipeline on digits with PSN students (``--config.model.neuron=psn``), shrunk to a
tiny run: ANN teacher -> transplant (the PSN parameters keep their init) -> KD -> export to SpikingJelly."""

import json

import numpy as np
import pytest
from launch_helpers import TINY, launch

pytest.importorskip("torch")


def test_idsnn_digits_with_a_psn_student_runs_and_exports(tmp_path):
    from snnjax.interop import export
    from snnjax.interop import torch as tio

    wd = tmp_path / "psn"
    launch(
        "configs/idsnn.py:digits",
        wd,
        *TINY,
        "--config.model.neuron=psn",
        "--config.model.psn_variant=masked",
        "--config.model.psn_order=2",
        "--config.model.surrogate=atan",
        "--config.model.time_steps=2",
        "--config.train.epochs=1",
        "--config.teacher.model.name=resnet18",
        "--config.teacher.model.width=4",
        "--config.teacher.train.epochs=1",
        "--config.teacher.train.progress_bar=False",
        "--config.teacher.train.tensorboard=False",
    )
    summary = json.loads((wd / "summary.json").read_text())
    assert 0.0 <= summary["best_test_accuracy"] <= 1.0
    assert summary["transplant"]["transplanted"] > 0
    report = (wd / "transplant_report.txt").read_text()
    kept = [line for line in report.splitlines() if "act" in line and "kept initialisation (neuron parameter)" in line]
    assert len(kept) == 2 * 17  # weight and bias of every PSN layer of the ResNet18

    out = tmp_path / "psn.pth"
    assert export.main(["--workdir", str(wd), "--out", str(out)]) == 0
    sidecar = json.loads((tmp_path / "psn.pth.json").read_text())
    assert sidecar["neuron"]["node"] == "MaskedPSN" and sidecar["neuron"]["k"] == 2 and sidecar["neuron"]["T"] == 2
    state = tio.load_state_dict(str(out))
    np.testing.assert_array_equal(state["sn1.mask0"], [[1.0, 0.0], [1.0, 1.0]])
    assert state["sn1.weight"].shape == (2, 2) and state["sn1.bias"].shape == (2, 1)
    assert tio.from_torch(state).report.arch.psn == "masked"
