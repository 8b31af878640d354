"""A PyTorch ResNet34 file as IDSNN teacher + transplant source on the command line, end to end on digits;
the trained SNN exported to a SpikingJelly-layout PyTorch model that scores the same test accuracy;
one-line errors for a truncated file, a mismatched network and an unknown layout."""

import json
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the snnjax[torch] extra; CI installs it (.ci/run)

from launch_helpers import ROOT, TINY, launch  # noqa: E402

from snnjax import data as data_lib  # noqa: E402
from snnjax.interop import source as torch_source  # noqa: E402
from snnjax.interop import torch as tio  # noqa: E402
from snnjax.train import mesh as mesh_lib  # noqa: E402

from .torch_reference import IDSNNResNet, SpikingJellyResNet, TorchvisionResNet, randomize_bn  # noqa: E402


def _save_resnet34(path, in_channels=1, num_classes=10):
    """A torchvision-layout ResNet34 (CIFAR variant: 3x3 conv1, no max-pool), width 8, saved with torch.save."""
    torch.manual_seed(0)
    model = randomize_bn(TorchvisionResNet(34, num_classes=num_classes, width=8, in_channels=in_channels, stem="cifar"))
    torch.save(model.state_dict(), path)
    return model


@pytest.mark.slow
def test_torch_resnet34_teacher_and_transplant_source_then_spikingjelly_export(tmp_path):
    pth = tmp_path / "resnet34.pth"
    _save_resnet34(pth)
    wd = tmp_path / "idsnn"
    launch(
        "configs/idsnn.py:digits",
        wd,
        *TINY,
        "--config.train.epochs=1",
        "--config.model.time_steps=2",
        f"--config.teacher.checkpoint={pth}",
        "--config.teacher.format=torchvision",
    )
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["init"] and summary["kd"] and 0.0 <= summary["best_test_accuracy"] <= 1.0
    teacher = summary["teacher"]
    assert (teacher["format"], teacher["model"], teacher["width"]) == ("torchvision", "resnet34", 8)
    # The imported teacher was tested on this run's data, as a teacher trained here would be.
    assert 0.0 <= teacher["test_accuracy"] <= 1.0 and teacher["chance_accuracy"] == 0.1
    assert json.loads((wd / "teacher_summary.json").read_text()) == teacher
    assert teacher["mapped"] == 36 * 5 + 2 and teacher["left_out"] == 36  # 36 conv + 36 BN x 4 + fc; BN counters
    assert summary["transplant"]["transplanted"] > 0 and summary["transplant"]["source"]["model"] == "resnet34"
    report = (wd / "teacher_torch_report.txt").read_text()
    assert "layer4.2.bn2.running_var" in report and "batch_stats/stage3_block2/bn2/var" in report
    assert not (wd / "checkpoints" / "teacher").exists()  # nothing trained or copied for the teacher
    stages = {json.loads(line)["stage"] for line in (wd / "metrics.jsonl").read_text().splitlines()}
    assert stages == {"student"}

    out = tmp_path / "snn.pth"
    proc = subprocess.run(
        [sys.executable, "-m", "snnjax.interop.export", f"--workdir={wd}", f"--out={out}", "--format=spikingjelly"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    sidecar = json.loads((tmp_path / "snn.pth.json").read_text())
    neuron = sidecar["neuron"]
    assert neuron["node"] == "LIFNode" and neuron["tau"] == pytest.approx(4 / 3) and neuron["time_steps"] == 2
    assert sidecar["arch"] == {
        "depth": 18,
        "width": 4,
        "in_channels": 1,
        "num_classes": 10,
        "stem": "cifar",
        "stem_padding": 1,
    }

    sj = SpikingJellyResNet(
        T=2,
        tau=neuron["tau"],
        v_threshold=neuron["v_threshold"],
        v_reset=neuron["v_reset"],
        depth=18,
        num_classes=10,
        width=4,
        in_channels=1,
        stem="cifar",
    ).eval()
    sj.load_state_dict(torch.load(out, weights_only=True), strict=True)

    from snnjax.analysis.workdir import load_run, test_inputs

    run = load_run(str(wd), mesh=mesh_lib.make_mesh())
    images = test_inputs(run.splits, run.splits.test.num_examples)  # normalised [360, 8, 8, 1]
    labels = np.asarray(run.splits.test.labels)
    jax_logits = np.asarray(run.model.apply(run.variables, images, train=False))
    mean, std = np.asarray(sidecar["input"]["mean"]), np.asarray(sidecar["input"]["std"])
    raw = np.asarray(run.splits.test.images, np.float32) / 255.0  # what the sidecar tells a PyTorch user
    np.testing.assert_allclose((raw - mean) / std, np.asarray(images), atol=1e-5)
    nchw = np.asarray(images).transpose(0, 3, 1, 2)  # the very same float32 inputs
    with torch.no_grad():
        torch_logits = sj(torch.from_numpy(np.array(nchw))).numpy()
    jax_acc = float(np.mean(jax_logits.argmax(-1) == labels))
    torch_acc = float(np.mean(torch_logits.argmax(-1) == labels))
    assert torch_acc == jax_acc  # identical in PyTorch
    # The comparison means something only if the SNN is not silent or constant. (Not "accuracy > chance":
    # a width-4 SNN after one epoch of KD from a random teacher lands near chance, above it on one CPU
    # model and below on another: XLA's kernels round differently and spikes amplify it.)
    assert np.ptp(jax_logits) > 0 and len(np.unique(jax_logits.argmax(-1))) > 1
    np.testing.assert_array_equal(torch_logits.argmax(-1), jax_logits.argmax(-1))
    assert np.max(np.abs(torch_logits - jax_logits)) <= 1e-4


def _splits():
    return data_lib.load_dataset("digits")


def _idsnn_config(preset="digits"):
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location("idsnn_cfg", os.path.join(ROOT, "configs", "idsnn.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(preset)


def test_imported_teacher_reports_its_test_accuracy_on_the_runs_data(tmp_path, capsys):
    """A .pth teacher's accuracy on the run's test split is measured (the training loop's evaluator),
    equals PyTorch's own on the same images, and goes to teacher_summary.json and the log."""
    from snnjax import models
    from snnjax.analysis.workdir import test_inputs
    from snnjax.methods.idsnn import config as idsnn_config
    from snnjax.methods.idsnn import pipeline

    from .torch_reference import TorchvisionResNet

    torch.manual_seed(1)
    net = randomize_bn(TorchvisionResNet(18, num_classes=10, width=2, in_channels=1, stem="cifar"))
    pth = tmp_path / "teacher18.pth"
    torch.save(net.state_dict(), pth)
    config = _idsnn_config("digits,kd_only")
    config.teacher.checkpoint = str(pth)
    splits = _splits()
    tcfg = idsnn_config.teacher_config(config)
    loaded = torch_source.load(config.teacher, "teacher", tcfg.model, splits, str(tmp_path), "teacher")
    teacher = pipeline.imported_teacher(
        loaded, models.build(loaded.model, 10), splits, tcfg, str(tmp_path), mesh_lib.make_mesh()
    )

    images = np.asarray(test_inputs(splits, splits.test.num_examples)).transpose(0, 3, 1, 2)  # all 360, NCHW
    with torch.no_grad():
        predicted = net(torch.from_numpy(np.array(images))).numpy().argmax(-1)
    torch_accuracy = float(np.mean(predicted == np.asarray(splits.test.labels)))
    summary = teacher.summary
    assert summary["test_accuracy"] == pytest.approx(torch_accuracy, abs=1e-6)
    assert (summary["chance_accuracy"], summary["restored_from"], summary["model"]) == (0.1, str(pth), "resnet18")
    assert summary["test_loss"] > 0.0 and teacher.variables is loaded.variables
    assert json.loads((tmp_path / "teacher_summary.json").read_text()) == summary
    line = [x for x in capsys.readouterr().err.splitlines() if "test accuracy" in x]
    assert line == [
        f"[teacher] {pth}: test accuracy {torch_accuracy:.4f} on digits (chance 0.1000); "
        f"see {tmp_path}/teacher_summary.json"
    ]


def _load(path, fmt="auto", tmp_path=None):
    section = ml_collections.ConfigDict({"checkpoint": str(path), "format": fmt})
    return torch_source.load(section, "teacher", None, _splits(), str(tmp_path), "teacher")


def test_truncated_file_gives_a_one_line_error(tmp_path):
    pth = tmp_path / "resnet34.pth"
    _save_resnet34(pth)
    data = pth.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as err:
        _load(bad, tmp_path=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "config.teacher.checkpoint=" in msg and "not a readable PyTorch checkpoint" in msg
    with pytest.raises(FileNotFoundError, match="no such file"):
        _load(tmp_path / "missing.pth", tmp_path=tmp_path)


def test_mismatched_network_names_the_first_tensor(tmp_path):
    rgb = tmp_path / "rgb.pth"
    _save_resnet34(rgb, in_channels=3)  # digits images have 1 channel
    with pytest.raises(ValueError) as err:
        _load(rgb, tmp_path=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "conv1.weight has shape (8, 3, 3, 3)" in msg and "(8, 1, 3, 3)" in msg
    classes = tmp_path / "classes.pth"
    _save_resnet34(classes, num_classes=100)
    with pytest.raises(ValueError, match=r"fc\.weight has shape \(100, 64\).*needs \(10, 64\)"):
        _load(classes, tmp_path=tmp_path)


def test_format_that_does_not_fit_lists_what_was_tried(tmp_path):
    pth = tmp_path / "idsnn.pth"
    torch.save(IDSNNResNet(18, num_classes=10, width=4, in_channels=1).state_dict(), pth)
    with pytest.raises(ValueError) as err:
        _load(pth, fmt="pycls", tmp_path=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "Tried: pycls (stem.conv.weight" in msg
    loaded = _load(pth, fmt="idsnn", tmp_path=tmp_path)  # the right format, and auto, both load it
    assert loaded.summary["format"] == "idsnn" and _load(pth, tmp_path=tmp_path).summary["format"] == "idsnn"


def test_safetensors_and_wrapped_checkpoints_load_the_same(tmp_path):
    model = _save_resnet34(tmp_path / "plain.pth")
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    tio.save_state_dict(state, tmp_path / "m.safetensors")
    torch.save(
        {"epoch": 3, "model_state": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pth"
    )
    for name in ("plain.pth", "m.safetensors", "w.pth"):
        loaded = tio.load_state_dict(tmp_path / name)
        assert set(loaded) == set(state)
        for key in state:
            np.testing.assert_array_equal(loaded[key], state[key])


def test_separate_transplant_source_from_a_pycls_safetensors_file(tmp_path):
    """``config.transplant.checkpoint`` may be a PyTorch file of another layout and depth than the teacher."""
    import importlib.util
    import os

    from snnjax.methods.idsnn import pipeline

    from .torch_reference import PyclsResNet

    torch.manual_seed(2)
    model = randomize_bn(PyclsResNet(18, num_classes=10, width=8, in_channels=1, stem="cifar"))
    path = tmp_path / "pycls18.safetensors"
    tio.save_state_dict({k: v.numpy() for k, v in model.state_dict().items()}, path)
    spec = importlib.util.spec_from_file_location("idsnn_cfg", os.path.join(ROOT, "configs", "idsnn.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("digits,init_only")
    config.transplant.checkpoint = str(path)
    variables, info = pipeline.transplant_source(config, str(tmp_path), _splits(), mesh_lib.make_mesh())
    assert (info["format"], info["model"], info["width"], info["checkpoint"]) == ("pycls", "resnet18", 8, str(path))
    expected = model.state_dict()["s2.b1.f.a.weight"].numpy().transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(variables["params"]["stage1_block0"]["conv1"]["kernel"], expected)
    assert "s4.b2.f.b_bn.running_mean" in (tmp_path / "transplant_source_torch_report.txt").read_text()


def test_unknown_format_is_refused_by_config_validation():
    import importlib.util
    import os

    from snnjax.methods.idsnn import config as idsnn_config

    spec = importlib.util.spec_from_file_location("idsnn_cfg", os.path.join(ROOT, "configs", "idsnn.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("digits")
    idsnn_config.validate(config)  # the defaults ("auto") pass
    config.transplant.format = "onnx"
    with pytest.raises(ValueError, match=r"config.transplant.format='onnx' is not valid; choose one of \['auto'"):
        idsnn_config.validate(config)
