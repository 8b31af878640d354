"""The hybrid_stdb pipeline end to end through launch.py on digits, at a tiny size, and its re-run."""

import json
import os
import subprocess
import sys

import ml_collections
import pytest
from launch_helpers import analyze

from snnjax import config as config_lib
from snnjax.methods.hybrid import config as hybrid_config
from snnjax.methods.hybrid import pipeline as hybrid_pipeline
from snnjax.train import mesh as mesh_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TINY = [
    "--config.model.width=4",
    "--config.model.time_steps=2",
    "--config.train.epochs=1",
    "--config.ann.train.epochs=1",
    "--config.conversion.time_steps=12",
    "--config.conversion.batch_size=64",
    "--config.conversion.eval_time_steps=(2,6)",
    "--config.train.progress_bar=False",
    "--config.ann.train.progress_bar=False",
    "--config.train.tensorboard=False",
    "--config.ann.train.tensorboard=False",
]


def _launch(workdir, *overrides, config="configs/hybrid_stdb.py:digits"):
    cmd = [
        sys.executable,
        os.path.join(ROOT, "launch.py"),
        f"--config={config}",
        f"--workdir={workdir}",
        *TINY,
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"launch failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


def test_digits_run_writes_summary_and_reruns_skip_finished_stages(tmp_path):
    wd = tmp_path / "hybrid"
    _launch(wd)
    summary = json.loads((wd / "summary.json").read_text())
    assert 0.0 <= summary["best_test_accuracy"] <= 1.0
    assert summary["pipeline"] == "hybrid_stdb" and summary["time_steps"] == 2
    assert summary["steps"] == 1437 // 64
    assert set(summary["conversion"]["accuracy"]) == {"2", "6"}
    assert all(0.0 <= a <= 1.0 for a in summary["conversion"]["accuracy"].values())
    assert set(summary["finetuned_accuracy"]) == {"2", "6"}
    assert 0.0 <= summary["ann"]["best_test_accuracy"] <= 1.0
    conv = json.loads((wd / "conversion.json").read_text())
    assert list(conv["thresholds"]) == ["conv0", "conv1", "conv2", "fc0", "fc1"]
    for name, theta in conv["thresholds"].items():
        assert theta > 0 and conv["scaled_thresholds"][name] == pytest.approx(0.5 * theta)  # digits: x0.5
    records = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in records} == {"ann", "conversion", "stdb"}
    assert sorted(r["time_steps"] for r in records if r["kind"] == "conversion") == [2, 6]

    summary_bytes = (wd / "summary.json").read_bytes()
    again = _launch(wd)  # the whole run is done: the launcher prints its summary and changes nothing
    assert again.stderr.startswith("finished earlier") and (wd / "summary.json").read_bytes() == summary_bytes
    # A conversion.json written before conversion.balance/statistic existed (it balanced every layer
    # on spikes) is still reused.
    legacy = {**conv, "balance_settings": dict(conv["balance_settings"])}
    for key in ("balance", "default_threshold", "statistic"):
        del legacy["balance_settings"][key]
    (wd / "conversion.json").write_text(json.dumps(legacy))
    conv = legacy
    again = _launch(wd, "--config.train.epochs=2")  # a longer STDB stage: the ANN and the conversion are reused
    assert "[ann] finished earlier" in again.stderr
    assert "[conversion] thresholds from" in again.stderr
    assert json.loads((wd / "conversion.json").read_text()) == conv
    # python -m snnjax.analysis --workdir: the fine-tuned spiking VGG, rebuilt through the model registry.
    analysis = analyze(wd, tmp_path / "analysis")
    assert analysis["stage"] == "stdb" and analysis["time_steps"] == 2
    assert set(analysis["neurons"]) == {f"{n}_act" for n in ("conv0", "conv1", "conv2", "fc0", "fc1")}


def test_presets_pass_validation_and_follow_the_paper(load_config):
    c10 = load_config("hybrid_stdb", "cifar10")
    config_lib.validate(c10)
    config_lib.validate(load_config("hybrid_stdb", "digits"))
    assert (c10.model.name, c10.model.time_steps, c10.model.surrogate) == ("vgg16", 100, "stdb")
    assert (c10.ann.optim.name, c10.ann.optim.lr, c10.ann.optim.weight_decay) == ("sgd", 1e-2, 5e-4)
    assert (c10.optim.name, c10.optim.lr, c10.optim.weight_decay) == ("amsgrad", 1e-4, 5e-4)
    assert (c10.conversion.time_steps, c10.conversion.scaling_factor) == (1000, 0.7)
    stage = hybrid_config.ann_config(c10)
    assert tuple(stage.optim.milestones) == (180, 240, 270)  # 60/80/90% of 300 epochs
    assert (stage.model.name, stage.model.neuron, stage.model.time_steps, stage.model.encoding) == (
        "vgg16",
        "relu",
        1,
        "direct",
    )
    assert tuple(hybrid_config.stdb_config(c10).optim.milestones) == (12, 16, 18)  # of the 20 fine-tuning epochs
    # Official-code details (docs/hybrid_stdb.md): one-step spike delay, SNN dropout 0.3 / ANN 0.2,
    # ANN on dataset mean/std, no Nesterov, augmented balancing batch.
    assert c10.model.spike_delay and c10.model.dropout == 0.3 and c10.ann.dropout == 0.2
    assert c10.ann.normalization == "dataset" and c10.data.normalization == "symmetric"
    assert not c10.ann.optim.nesterov and c10.conversion.augment
    assert stage.model.dropout == 0.2
    for name in ("fashion_mnist", "fashion_mnist_full"):
        fm = load_config("hybrid_stdb", name)
        config_lib.validate(fm)
        assert fm.data.name == "fashion_mnist" and fm.data.normalization == "unit" and fm.model.spike_delay
        assert hybrid_config.ann_config(fm).data.normalization == "unit"
    # The ANN stage's own normalisation travels in its config (and so in its checkpoints).
    assert hybrid_config.ann_config(c10).data.normalization == "dataset"
    assert (
        load_config("hybrid_stdb", "fashion_mnist_full").data.train_subset == 0
        and load_config("hybrid_stdb", "fashion_mnist").data.train_subset == 6000
    )


def test_bad_settings_name_the_key(load_config):
    cfg = ml_collections.ConfigDict(load_config("hybrid_stdb", "digits").to_dict())
    cfg.data.normalization = "minmax"
    with pytest.raises(ValueError, match="config.data.normalization"):
        config_lib.validate(cfg)
    cfg = ml_collections.ConfigDict(load_config("hybrid_stdb", "digits").to_dict())
    cfg.model.neuron = "relu"
    with pytest.raises(ValueError, match="config.model.neuron"):
        config_lib.validate(cfg)
    cfg = ml_collections.ConfigDict(load_config("hybrid_stdb", "digits").to_dict())
    cfg.ann.checkpoint = "/nonexistent/run"
    with pytest.raises(FileNotFoundError, match=r"config.ann.checkpoint='/nonexistent/run' holds no ANN checkpoint"):
        hybrid_pipeline.run(cfg, "/nonexistent/workdir", mesh=mesh_lib.make_mesh())


def test_resnet_run_end_to_end_then_analysis_and_export(tmp_path):
    """digits + the hybrid ResNet (resnet6: both block kinds) through launch.py; the analysis CLI path
    rebuilds it from the workdir; NIR export refuses it with the reason (soft reset)."""
    from snnjax.analysis.workdir import load_run
    from snnjax.export import write_nir
    from snnjax.methods.hybrid import resnet

    wd = tmp_path / "hybrid_resnet"
    _launch(
        wd,
        "--config.model.name=hybrid_resnet6",
        "--config.conversion.time_steps=24",
        "--config.conversion.balance=residual",  # the pipeline's conv2 rescale, into STDB as well
        "--config.conversion.statistic=activations",
        config="configs/hybrid_stdb.py:digits,resnet12",
    )
    summary = json.loads((wd / "summary.json").read_text())
    conv = json.loads((wd / "conversion.json").read_text())
    # (JSON keys are written sorted; the balancing order itself is tested in test_resnet_official.py)
    assert sorted(conv["thresholds"]) == sorted(resnet.spiking_layer_names(resnet.BLOCKS["hybrid_resnet6"]))
    assert all(theta > 0 for theta in conv["thresholds"].values())
    assert conv["balance_settings"]["balance"] == "residual" and conv["balance_settings"]["statistic"] == "activations"
    assert set(summary["conversion"]["accuracy"]) == {"2", "6"} and 0.0 <= summary["best_test_accuracy"] <= 1.0
    analysis = analyze(wd, tmp_path / "analysis")
    assert analysis["stage"] == "stdb" and analysis["time_steps"] == 2
    assert set(analysis["neurons"]) == {f"{n}_act" for n in conv["thresholds"]}
    run = load_run(str(wd), mesh=mesh_lib.make_mesh())
    with pytest.raises(TypeError, match="reset by subtraction"):
        write_nir(str(tmp_path / "m.nir"), run.model, run.variables, input_shape=(8, 8, 1))


def test_the_finetuning_start_has_its_own_threshold_factor_and_defaults_to_the_converted_snn(load_config):
    cfg = ml_collections.ConfigDict(load_config("hybrid_stdb", "digits").to_dict())
    record = {"thresholds": {"conv0": 4.0, "fc0": 0.2}, "scaled_thresholds": {"conv0": 2.8, "fc0": 0.14}}
    # 0 (the official recipe): STDB starts from the converted SNN's thresholds, the same object.
    cfg.conversion.finetune_scaling_factor = 0.0
    assert hybrid_pipeline.finetune_thresholds(cfg, record) is record["scaled_thresholds"]
    cfg.conversion.finetune_scaling_factor = 0.5
    got = hybrid_pipeline.finetune_thresholds(cfg, record)
    assert got == pytest.approx({"conv0": 2.0, "fc0": 0.1})  # the balanced thresholds x0.5, by hand
    cfg.conversion.finetune_scaling_factor = -0.1
    with pytest.raises(ValueError, match="conversion.finetune_scaling_factor"):
        config_lib.validate(cfg)


def test_the_60k_preset_fine_tunes_from_x05_without_weight_decay_and_converts_at_x07(load_config):
    cfg = load_config("hybrid_stdb", "fashion_mnist_60k")
    assert cfg.conversion.scaling_factor == 0.7
    assert cfg.conversion.finetune_scaling_factor == 0.5
    assert cfg.optim.weight_decay == 0.0
