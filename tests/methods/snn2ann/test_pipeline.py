"""SNN2ANN end to end through ``launch.py`` on the embedded digits data (tiny width, 2 epochs).

The subprocess inherits the 8 fake CPU devices from conftest (global batch 64 over 8 devices).
"""

import json
import os
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest
from launch_helpers import analyze

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TINY = ["--config.model.width=4", "--config.train.progress_bar=False", "--config.train.tensorboard=False"]

sys.path.insert(0, os.path.join(ROOT, "configs"))


def _launch(workdir, preset, *overrides):
    cmd = [
        sys.executable,
        os.path.join(ROOT, "launch.py"),
        f"--config=configs/snn2ann.py:{preset}",
        f"--workdir={workdir}",
        *TINY,
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"launch failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


@pytest.mark.slow
def test_digits_run_writes_summary_with_snn_branch_accuracy_and_checkpoints_thresholds(tmp_path):
    wd = tmp_path / "snn2ann"
    _launch(wd, "digits", "--config.train.epochs=2", "--config.optim.lr=0.005")  # 2 epochs: a larger lr
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["pipeline"] == "snn2ann" and summary["arm"] == "snn2ann" and summary["model"] == "snn2ann_vgg"
    assert summary["steps"] == 2 * (1437 // 64) and summary["devices"] == 8
    # best_test_accuracy is the best of the per-epoch (SNN-branch) evaluations, and beats chance.
    epochs = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    tests = [r["test_accuracy"] for r in epochs if r["kind"] == "epoch"]
    assert len(tests) == 2 and summary["best_test_accuracy"] == pytest.approx(max(tests))
    assert 0.2 < summary["best_test_accuracy"] <= 1.0
    # The final SNN accuracy of the pipeline's own two-branch evaluation equals the engine's.
    assert summary["final"]["snn_test_accuracy"] == pytest.approx(summary["final_test_accuracy"])
    assert 0.0 < summary["final"]["snn_firing_rate"] < 1.0
    # The measurements of the 60k comparison come from the same run: spikes per test image (every test
    # image), the compiled train step's memory, the process's peak RSS, training seconds per epoch.
    assert summary["spikes"]["num_examples"] == 360 and summary["spikes"]["spikes_per_example"] > 0
    memory = summary["train_step_memory"]
    assert memory["total"] == memory["temp"] + memory["argument"] > 0
    assert summary["peak_rss_bytes"] > 100 * 2**20
    seconds = [r["epoch_train_seconds"] for r in epochs if r["kind"] == "epoch"]
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert sum(seconds) == pytest.approx(summary["train_time_s"], rel=1e-6)  # evaluation is not training time
    # Thresholds travel in the checkpoint and only rose from their U[0, 1) start (mean ~0.5).
    ckdir = wd / "checkpoints" / "snn2ann"
    step = max(int(s) for s in os.listdir(ckdir) if s.isdigit())
    state = ocp.StandardCheckpointer().restore(os.path.join(ckdir, str(step), "state"))
    vth = state["model_state"]["thresholds"]
    assert set(vth) == {f"layer{i}_neuron" for i in range(4)}
    means = {k: float(np.mean(v["vth"])) for k, v in vth.items()}
    assert means == pytest.approx(summary["threshold_mean_per_layer"], rel=1e-6)
    assert all(0.3 < m < 1.5 for m in means.values())
    analysis = analyze(wd, tmp_path / "analysis")  # python -m snnjax.analysis --workdir
    assert analysis["stage"] == "snn2ann" and analysis["time_steps"] == 4 and analysis["num_examples"] == 16
    assert set(analysis["neurons"]) == {f"layer{i}_neuron" for i in range(4)}


def test_presets_follow_the_paper_and_validate():
    import snn2ann as cfg_file

    from snnjax import config as config_lib

    c100 = cfg_file.get_config("cifar100")
    config_lib.validate(c100)
    assert (c100.optim.name, c100.optim.lr, c100.optim.weight_decay) == ("adam", 1e-3, 5e-4)
    assert (c100.data.batch_size, c100.train.epochs, tuple(c100.optim.milestones)) == (512, 200, (100, 150, 175))
    assert (c100.model.name, c100.model.time_steps, c100.model.width) == ("snn2ann_vgg", 4, 64)
    r17 = cfg_file.get_config("cifar100,resnet17,stsu")
    assert (r17.model.name, r17.model.time_steps, r17.model.mapping_unit) == ("snn2ann_resnet17", 5, "stsu")
    digits = cfg_file.get_config("digits,bptt")
    config_lib.validate(digits)
    assert digits.arm == "bptt" and digits.data.name == "digits" and digits.data.batch_size % 8 == 0
    with pytest.raises(ValueError, match="valid presets"):
        cfg_file.get_config("digits,vgg16")
    # Official-code details (docs/snn2ann.md).
    assert (c100.model.membrane_dropout, c100.model.residual, c100.model.init) == (0.5, "current", "pytorch")
    assert tuple(c100.data.mean) == (0.4914, 0.4822, 0.4465) and tuple(c100.data.std) == (0.557, 0.549, 0.5534)
    fm = cfg_file.get_config("fashion_mnist")
    config_lib.validate(fm)
    assert fm.data.name == "fashion_mnist" and fm.data.train_subset == 6000 and tuple(fm.data.mean) == ()
    full = cfg_file.get_config("fashion_mnist_full")
    assert (full.data.train_subset, full.train.epochs, full.data.batch_size) == (0, 200, 512)
