"""The export's neuron description, its refusals, and the choice of checkpoint (``--step``); the full export
to SpikingJelly runs in test_source.py."""

import json

import numpy as np
import pytest

from snnjax import models, workdir_layout
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


def test_existing_out_is_refused_in_one_line_unless_force(tmp_path, capsys):
    """As ``snnjax.data.write_records``: an existing --out (or its sidecar) is never overwritten silently;
    the refusal comes before the run is read (here there is none)."""
    out = tmp_path / "m.pth"
    out.write_bytes(b"keep me")
    assert export.main(["--workdir", str(tmp_path / "run"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"error: --out {out} already exists. Fix: delete it, choose another --out, or pass --force to overwrite it."
    )
    assert out.read_bytes() == b"keep me"
    out.unlink()
    (tmp_path / "m.pth.json").write_text("{}")  # a stale sidecar would describe the wrong network
    assert export.main(["--workdir", str(tmp_path / "run"), "--out", str(out)]) == 2
    assert f"--out {out}.json already exists" in capsys.readouterr().err
    # --force passes the refusal (and then fails on the missing run, not on the file).
    assert export.main(["--workdir", str(tmp_path / "run"), "--out", str(out), "--force"]) == 2
    assert capsys.readouterr().err.startswith("error: no checkpoints under")


def test_resolve_step_names_the_steps_available():
    steps, where = [6, 12, 18], "wd (train)"
    assert export.resolve_step(12, steps, 6, where) == 12 and export.resolve_step("best", steps, 6, where) == 6
    with pytest.raises(
        ValueError, match=r"^--step=7 is not a checkpoint; steps available in wd \(train\): \[6, 12, 18\]"
    ):
        export.resolve_step(7, steps, 6, where)
    with pytest.raises(ValueError, match="best test accuracy was reached at step 3, which is no longer kept"):
        export.resolve_step("best", steps, 3, where)  # orbax keeps the latest of equally good checkpoints
    with pytest.raises(ValueError, match="no test accuracy was recorded"):
        export.resolve_step("best", steps, -1, where)
    assert export.parse_step("LAST", steps, where) == "last" and export.parse_step("12", steps, where) == 12
    with pytest.raises(ValueError, match=r"--step='-1' is not valid; steps available in wd \(train\): \[6, 12, 18\]"):
        export.parse_step("-1", steps, where)


ACCURACIES = {5: 0.3, 10: 0.6, 15: 0.5}  # the best (10) is neither the first nor the last checkpoint


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory, load_config):
    """A digits ANN ResNet18 (width 2) stage ``train`` with checkpoints at steps 5, 10 and 15, written as
    the training loop writes them (state, meta with the best step so far, config, test accuracy) but
    without training or compiling anything: the state has the structure of the stage's plan, filled
    with seeded numbers, and the params at step s are those + s."""
    import jax

    from snnjax import data as data_lib
    from snnjax.train import checkpoint as ckpt_lib
    from snnjax.train import loop, setup
    from snnjax.train import mesh as mesh_lib

    config = load_config("teacher", "digits")
    config.model.name, config.model.width, config.train.keep_checkpoints = "resnet18", 2, 3
    splits = data_lib.load_from_config(config.data)
    model = models.build(config.model, splits.num_classes)
    abstract = setup.plan(config, splits, model, mesh_lib.make_mesh()).abstract_state
    rng = np.random.default_rng(0)
    base = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(a.dtype), abstract)
    wd = tmp_path_factory.mktemp("export_steps")
    ckpt = ckpt_lib.Checkpointer(workdir_layout.stage_checkpoints(str(wd), "train"), keep=3, async_save=False)
    meta = dict(loop.FRESH_META)
    for epoch, (step, accuracy) in enumerate(ACCURACIES.items(), start=1):
        if accuracy > meta["best_test_accuracy"]:  # as loop.end_epoch records it
            meta.update(best_test_accuracy=accuracy, best_epoch=epoch, best_step=step)
        state = base.replace(step=np.int32(step), params=jax.tree.map(lambda x, s=step: x + s, base.params))
        meta["epoch"] = epoch
        ckpt.save(step, state, meta=dict(meta), config=config.to_dict(), metrics={"test_accuracy": accuracy})
    ckpt.close()
    return wd, np.asarray(base.params["head"]["kernel"]).T


def test_step_last_best_and_number_export_that_checkpoint(three_checkpoints, tmp_path, capsys):
    wd, initial_head = three_checkpoints
    for choice, expected in ((None, 15), ("last", 15), ("best", 10), ("5", 5)):
        out = tmp_path / f"{choice}.pth"
        argv = ["--workdir", str(wd), "--out", str(out), "--format", "torchvision"]
        assert export.main(argv + ([] if choice is None else ["--step", choice])) == 0
        printed = capsys.readouterr().out.splitlines()
        sidecar = json.loads((tmp_path / f"{choice}.pth.json").read_text())
        assert (sidecar["step"], sidecar["step_choice"], sidecar["steps_available"]) == (
            expected,
            choice or "last",
            [5, 10, 15],
        )
        assert (sidecar["best_step"], sidecar["best_test_accuracy"]) == (10, 0.6)
        assert printed[-1] == (
            f"exported stage train, step {expected} (--step {choice or 'last'}; steps available: [5, 10, 15]; "
            "best test accuracy 0.6000 at step 10)"
        )
        np.testing.assert_allclose(tio.load_state_dict(out)["fc.weight"], initial_head + expected, rtol=1e-6)


def test_missing_step_fails_in_one_line_and_force_overwrites(three_checkpoints, tmp_path, capsys):
    wd, _ = three_checkpoints
    out = tmp_path / "m.pth"
    for bad, shown in (("7", "--step=7 is not a checkpoint"), ("first", "--step='first' is not valid")):
        assert export.main(["--workdir", str(wd), "--out", str(out), "--step", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"error: {shown}")
        assert f"steps available in {wd} (train): [5, 10, 15]" in err and not out.exists()
    out.write_bytes(b"old")
    assert export.main(["--workdir", str(wd), "--out", str(out), "--step", "10", "--force"]) == 0
    assert json.loads((tmp_path / "m.pth.json").read_text())["step"] == 10 and out.read_bytes() != b"old"
