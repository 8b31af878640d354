"""snnjax.methods.hybrid.config: the fashion_mnist_60k presets and the sweep settings' validation."""

import os
import subprocess
import sys

import pytest

from snnjax import config as config_lib
from snnjax.methods.hybrid import config as hybrid_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.parametrize(
    "arg, arch, t_s", [("fashion_mnist_60k", "vgg5", 8), ("fashion_mnist_60k,resnet20", "hybrid_resnet20", 16)]
)
def test_60k_presets_use_all_the_data_and_a_sweep_that_holds_8x_the_finetuning_t(arg, arch, t_s, load_config):
    cfg = load_config("hybrid_stdb", arg)
    config_lib.validate(cfg)
    assert (cfg.model.name, cfg.model.time_steps, cfg.data.train_subset) == (arch, t_s, 0)
    assert cfg.conversion.eval_examples == 0  # every accuracy on all 10,000 test images
    assert tuple(cfg.conversion.eval_time_steps) == (8, 16, 32, 64, 128, 256, 512)
    assert 8 * t_s in cfg.conversion.eval_time_steps and cfg.train.epochs >= 5
    assert cfg.conversion.finetune_spikes is True


@pytest.mark.parametrize(
    "sweep, t_s, match",
    [
        ((), 8, "increasing positive ints"),
        ((8, 32, 16), 8, "increasing positive ints"),
        ((8, 8, 16), 8, "increasing positive ints"),
        ((0, 8), 8, "increasing positive ints"),
        ((8, 16, 32), 12, "config.model.time_steps=12"),
    ],
)
def test_invalid_sweep_settings_are_refused(sweep, t_s, match, load_config):
    cfg = load_config("hybrid_stdb", "fashion_mnist_60k")
    cfg.conversion.eval_time_steps = sweep
    cfg.model.time_steps = t_s
    with pytest.raises(ValueError, match=match):
        hybrid_config.validate(cfg)


def test_a_finetuning_t_outside_the_sweep_ends_in_one_line(tmp_path):
    cmd = [
        sys.executable,
        "launch.py",
        "--config=configs/hybrid_stdb.py:digits",
        "--config.model.time_steps=12",
        f"--workdir={tmp_path / 'w'}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2 and "config.model.time_steps=12" in lines[0] and "eval_time_steps" in lines[0], lines
    assert not (tmp_path / "w").exists()
