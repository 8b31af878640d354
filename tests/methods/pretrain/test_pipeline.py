"""Pretraining as a bridge: presets, the event-T check, and pipe-S / pipe-D end to end through launch.py."""

import functools
import json
import os
import subprocess
import sys

import pytest
from launch_helpers import analyze

from snnjax.methods.pretrain import config as pretrain_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


# ---------------------------------------------------------------------------------------------- configs


def test_presets(load_config):
    get = functools.partial(load_config, "pretrain")
    s = get("pipe_s,digits")
    assert s.pipeline == "pretrain" and s.data.name == "digits"
    assert s.pretrain.data.name == "" and s.pretrain.reinit == ""
    model = (s.model.neuron, s.model.time_steps, s.model.decay, s.model.v_threshold, s.model.reset, s.model.surrogate)
    assert model == ("lif", 6, 0.25, 0.5, "hard", "rectangular")
    assert s.optim.milestones == (2, 4, 6, 8) and s.optim.gamma == 0.3 and s.pretrain.enabled
    assert s.pretrain.activation == "sharpened" and s.pretrain.load_optimizer_state and not s.pretrain.freeze_loaded
    d = get("pipe_d,digits")  # official pipe-D: new stem + FC, the rest frozen
    assert d.data.name == "digits_events" and d.pretrain.data.name == "digits"
    assert d.pretrain.reinit == "stem_conv,stem_bn,head" and d.pretrain.freeze_loaded
    assert d.optim.name == "adam" and d.optim.lr == 1e-3 and d.optim.weight_decay == 1e-4
    full = get("pipe_d,digits,full")
    assert full.pretrain.reinit == "stem_conv" and not full.pretrain.freeze_loaded and full.optim.name == "sgd"
    c10 = get("pipe_d,cifar10")
    assert c10.train.epochs == 60 and c10.optim.milestones == (20, 30, 40) and get("pipe_s,cifar10").train.epochs == 50
    f = get("pipe_d,fashion_mnist")
    assert f.data.name == "fashion_mnist_events" and f.pretrain.data.name == "fashion_mnist"
    d.model.time_steps = 4  # the event T follows the model's T
    assert dict(d.data.options) == {"time_steps": 4}
    c = get("pipe_d,cifar10,scratch,sharpened")
    assert c.data.name == "cifar10_events" and c.pretrain.data.name == "cifar10" and not c.pretrain.enabled
    assert c.pretrain.activation == "sharpened" and c.model.width == 64
    with pytest.raises(ValueError, match="pipe_x"):
        get("pipe_x")


def test_event_time_steps_must_match_the_model(load_config):
    cfg = load_config("pretrain", "pipe_d,digits")
    pretrain_config.check_event_steps(cfg, (8, 8, 1), "static")  # static images: nothing to check
    pretrain_config.check_event_steps(cfg, (6, 8, 8, 2), "events")
    with pytest.raises(ValueError, match=r"4 frames.*time_steps=6.*data.options.time_steps"):
        pretrain_config.check_event_steps(cfg, (4, 8, 8, 2), "events")


# ---------------------------------------------------------------------------------------------- end to end


TINY = [
    "--config.model.width=4",
    "--config.model.time_steps=2",
    "--config.train.epochs=1",
    "--config.pretrain.train.epochs=1",
    "--config.train.progress_bar=False",
    "--config.train.tensorboard=False",
    "--config.pretrain.train.progress_bar=False",
    "--config.pretrain.train.tensorboard=False",
]


def run_pipe(workdir, preset, *overrides):
    cmd = [
        sys.executable,
        os.path.join(ROOT, "launch.py"),
        f"--config=configs/pretrain.py:{preset}",
        f"--workdir={workdir}",
        *TINY,
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)  # tests/conftest.py's XLA_FLAGS
    assert proc.returncode == 0, f"launch failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    summary = json.loads((workdir / "summary.json").read_text())
    stages = {json.loads(line)["stage"] for line in (workdir / "metrics.jsonl").read_text().splitlines()}
    return summary, stages


@pytest.fixture(scope="module")
def pipe_s_workdir(tmp_path_factory):
    """One tiny pipe-S run with the sharpened ReLU (1 pretraining + 1 fine-tuning epoch), shared by both tests."""
    workdir = tmp_path_factory.mktemp("pipe_s")
    return workdir, *run_pipe(workdir, "pipe_s,digits,sharpened")


def test_pipe_s_end_to_end_with_the_sharpened_relu(pipe_s_workdir):
    wd, summary, stages = pipe_s_workdir
    assert 0.0 <= summary["best_test_accuracy"] <= 1.0
    assert 0.0 <= summary["transfer"]["test_accuracy_before_finetune"] <= 1.0
    assert summary["pipeline"] == "pretrain" and summary["input"] == "static" and summary["time_steps"] == 2
    assert summary["transfer"]["copied"] == 102 and summary["transfer"]["reinitialised"] == []
    assert summary["transfer"]["unused"] == sorted(
        ["schedule/stem_act/epoch"]
        + [f"schedule/stage{s}_block{b}/{a}/epoch" for s in range(4) for b in range(2) for a in ("act1", "act_out")]
    )
    assert summary["pretrain"]["activation"] == "sharpened" and summary["pretrain"]["steps"] == 1437 // 64
    assert stages == {"pretrain", "finetune"}
    assert (wd / "transfer_report.txt").read_text().startswith("transfer: 102 leaves from the ANN, 0 kept")
    analysis = analyze(wd)  # python -m snnjax.analysis --workdir
    assert analysis["stage"] == "finetune" and analysis["time_steps"] == 2 and analysis["neurons"]


def test_pipe_d_end_to_end_on_event_frames(pipe_s_workdir, tmp_path):
    # Stage 1 is restored from the pipe-S run (same static digits ANN): pipe-D's own work is the
    # event data, the partial load and the fine-tuning on [B, T, H, W, 2] frames.
    source = pipe_s_workdir[0]
    summary, stages = run_pipe(
        tmp_path / "pipe_d",
        "pipe_d,digits,sharpened,full",
        f"--config.pretrain.checkpoint={source}",
        "--config.pretrain.eval_transfer=False",
    )
    assert 0.0 <= summary["best_test_accuracy"] <= 1.0
    assert summary["dataset"] == "digits_events" and summary["input"] == "events"
    assert summary["pretrain"]["restored_from"] == str(source) and summary["pretrain"]["best_step"] == 1437 // 64
    assert summary["transfer"]["copied"] == 101 and summary["transfer"]["reinitialised"] == ["params/stem_conv/kernel"]
    assert stages == {"finetune"}
    analysis = analyze(tmp_path / "pipe_d")  # the event-frame SNN
    assert analysis["stage"] == "finetune" and analysis["neurons"]
