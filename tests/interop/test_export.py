"""The export's neuron description and its refusals (the full export runs in test_torch_pipeline.py)."""

import pytest

from snnjax import models
from snnjax.interop import export
from snnjax.interop import torch as tio


def test_neuron_spec_names_the_spikingjelly_twin():
    spec = export.neuron_spec(models.model_config(decay=0.25, v_threshold=0.5, time_steps=4))
    assert spec["node"] == "LIFNode" and spec["tau"] == 4 / 3 and 1.0 - 1.0 / spec["tau"] == 0.25
    assert (spec["v_reset"], spec["decay_input"], spec["time_steps"]) == (0.0, False, 4) and "warning" not in spec
    assert export.neuron_spec(models.model_config(neuron="if", reset="soft"))["node"] == "IFNode"
    assert export.neuron_spec(models.model_config(neuron="if", reset="soft"))["v_reset"] is None
    assert export.neuron_spec(models.model_config(neuron="plif"))["node"] == "ParametricLIFNode"
    assert "no exact SpikingJelly twin" in export.neuron_spec(models.model_config(reset="soft"))["warning"]
    assert export.neuron_spec(models.model_config(neuron="relu", time_steps=1)) is None


def test_plif_exports_only_to_spikingjelly():
    torch = pytest.importorskip("torch")
    from .torch_reference import SpikingJellyResNet

    torch.manual_seed(0)
    sj = SpikingJellyResNet(T=2, tau=2.0, v_threshold=0.5, plif=True, depth=18, num_classes=3, width=2, stem="cifar")
    variables = tio.from_torch({k: v.detach().numpy() for k, v in sj.state_dict().items()}).variables
    assert float(variables["params"]["stem_act"]["decay_logit"]) == -float(
        sj.sn1.w.detach()
    )  # decay = sigmoid(-w) = 1 - 1/tau
    state = tio.to_torch(variables, "spikingjelly")
    assert float(state["sn1.w"]) == float(sj.sn1.w.detach()) and "layer4.1.sn2.w" in state
    with pytest.raises(ValueError, match="export PLIF models as spikingjelly"):
        tio.to_torch(variables, "torchvision")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert export.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "m.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no checkpoints under") and "\n" not in err
    assert export.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "m.npz")]) == 2
    assert "name a .pth, .pt or .safetensors file" in capsys.readouterr().err
