"""Spike analysis: firing rates, SOPs, MACs and energy against hand counts and a NumPy second path."""

import json
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from snnjax import analysis, epoch_clock, layers, models
from snnjax import config as config_lib
from snnjax.analysis import energy as energy_lib
from snnjax.analysis import plots
from snnjax.analysis.__main__ import main as analysis_main
from snnjax.train import checkpoint as ckpt_lib
from snnjax.train import mesh as mesh_lib
from snnjax.train.state import create_train_state

RNGS = {"params": jax.random.key(0), "dropout": jax.random.key(1), "encoding": jax.random.key(2)}


# ------------------------------------------------------------------------------------------ hand-made net


class HandNet(nn.Module):
    """stem 1x1 conv (analog) -> LIF -> 3x3 conv (pad 1) -> LIF -> mean over space and T -> dense.

    The shape of a snnjax ResNet in miniature; its weights are set by hand in ``_hand_variables``.
    """

    time_steps: int = 2

    @nn.compact
    def __call__(self, x, *, train=False):
        del train
        t = self.time_steps
        x = nn.Conv(1, (1, 1), use_bias=False, name="stem_conv")(x)
        x = layers.merge_time(jnp.broadcast_to(x[:, None], (x.shape[0], t) + x.shape[1:]))
        x = layers.SpikingNeuron(decay=0.25, v_threshold=0.5, name="act0")(x, t)
        x = nn.Conv(2, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name="conv")(x)
        x = layers.SpikingNeuron(decay=0.25, v_threshold=0.5, name="act1")(x, t)
        x = layers.split_time(jnp.mean(x, axis=(1, 2)), t).mean(axis=1)
        return nn.Dense(3, name="head")(x)


def _hand_setup():
    """Example 0: pixels (0,0) and (1,1) at 1.0, the rest 0; example 1: all zeros.

    Hand counts (T = 2, decay 0.25, threshold 0.5, hard reset):
    * act0: u = 1 at both steps for the two lit pixels -> 2 neurons x 2 steps = 4 spikes (example 0).
    * conv (all weights 0.3): a position whose 3x3 window holds both spikes gets 0.6 > 0.5 and fires
      every step; windows with one spike get 0.3, then 0.25*0.3 + 0.3 = 0.375: never. Positions
      (0,0),(0,1),(1,0),(1,1) hold both -> 4 positions x 2 channels x 2 steps = 16 spikes.
    * SOPs of conv: spike (0,0) is in 4 windows, (1,1) in 9; x 2 channels x 2 steps = 52.
    * SOPs of the head: 16 spikes x 3 classes = 48.
    """
    x = np.zeros((2, 3, 3, 1), np.float32)
    x[0, 0, 0, 0] = x[0, 1, 1, 0] = 1.0
    model = HandNet(time_steps=2)
    variables = jax.jit(lambda k: model.init({"params": k}, jnp.asarray(x)))(jax.random.key(0))
    params = {
        "stem_conv": {"kernel": jnp.ones((1, 1, 1, 1))},
        "conv": {"kernel": jnp.full((3, 3, 1, 2), 0.3)},
        "head": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)},
    }
    del variables
    return model, {"params": params}, jnp.asarray(x)


def test_firing_rates_and_counts_match_hand_counted_spikes():
    model, variables, x = _hand_setup()
    logits, report = analysis.forward_with_stats(model, variables, x)
    assert [n.path for n in report.neurons] == ["act0", "act1"]
    act0, act1 = report.neurons
    assert (act0.shape, act0.num_neurons, act0.spikes) == ((3, 3, 1), 9, 4)
    assert (act1.shape, act1.num_neurons, act1.spikes) == ((3, 3, 2), 18, 16)
    assert act0.firing_rate == pytest.approx(4 / (9 * 2 * 2))
    assert act1.firing_rate == pytest.approx(16 / (18 * 2 * 2))
    assert report.layer_stats()["act1"] == {
        "firing_rate": pytest.approx(16 / 72),
        "num_neurons": 18,
        "spikes_per_example": 8.0,
    }
    assert report.mean_firing_rate == pytest.approx(20 / ((9 + 18) * 2 * 2))
    # Raster of example 0: [T, K] for K evenly spaced neurons out of 9 (act0: all of them).
    expected = np.zeros((2, 9), np.uint8)
    expected[:, [0, 4]] = 1  # flat indices of pixels (0,0) and (1,1)
    np.testing.assert_array_equal(act0.raster, expected)
    # Logits: head(ones) of the mean spike map: example 0 channel means = 4 firing positions / 9.
    np.testing.assert_allclose(np.asarray(logits), [[8 / 9] * 3, [0.0] * 3], rtol=1e-6)


def test_rates_agree_with_the_layers_own_sown_firing_rate():
    model, variables, x = _hand_setup()
    _, report = analysis.forward_with_stats(model, variables, x)
    _, sown = model.apply(variables, x, mutable=["spike_stats"])
    for n in report.neurons:
        assert n.firing_rate == pytest.approx(float(sown["spike_stats"][n.path]["firing_rate"][0]), rel=1e-6)


def test_sops_macs_and_energy_of_the_hand_net():
    model, variables, x = _hand_setup()
    _, report = analysis.forward_with_stats(model, variables, x)
    syn = {s.path: s for s in report.synapses}
    assert (syn["stem_conv"].input_kind, syn["stem_conv"].macs, syn["stem_conv"].runs) == ("analog", 9, 1)
    assert syn["stem_conv"].sops == 0
    assert (syn["conv"].input_kind, syn["conv"].macs, syn["conv"].runs) == ("spikes", 3 * 3 * 9 * 1 * 2, 2)
    assert syn["conv"].sops == 52
    assert (syn["head"].input_kind, syn["head"].macs) == ("rates", 6)
    assert syn["head"].sops == pytest.approx(48)
    # Per example (B = 2): SOPs 100 / 2, analog MACs 9, ANN MACs 9 + 162 + 6 = 177.
    est = report.energy()
    assert (est.sops, est.snn_macs, est.ann_macs) == (50, 9, 177)
    assert est.snn_pj == pytest.approx(50 * 0.9 + 9 * 4.6)
    assert est.ann_pj == pytest.approx(177 * 4.6)
    assert est.ratio == pytest.approx(177 * 4.6 / 86.4)
    custom = report.energy(analysis.EnergyModel(e_mac_pj=3.0, e_ac_pj=0.1))
    assert (custom.snn_pj, custom.ann_pj) == (pytest.approx(50 * 0.1 + 9 * 3.0), pytest.approx(177 * 3.0))


def test_spike_summary_is_json_and_chunking_changes_nothing():
    model, variables, x = _hand_setup()
    whole = analysis.spike_summary(model, variables, x)
    chunked = analysis.spike_summary(model, variables, x, batch_size=1)
    assert json.loads(json.dumps(whole)) == whole
    assert whole == chunked
    assert whole["sops_per_example"] == 50 and whole["ann_macs_per_example"] == 177
    assert whole["energy_snn_uj"] == pytest.approx(86.4e-6)
    assert whole["firing_rates"] == {"act0": pytest.approx(4 / 36), "act1": pytest.approx(16 / 72)}


@pytest.mark.parametrize(
    "stride,spike,expected",
    [(1, (0, 0), 4 * 2), (1, (1, 1), 9 * 2), (2, (1, 1), 4 * 2), (2, (0, 0), 1 * 2), (2, (0, 1), 2 * 2)],
)
def test_conv_sops_count_real_taps_at_borders_and_strides(stride, spike, expected):
    """One spike in a 3x3 map, 3x3 kernel, pad 1, 2 output channels; windows counted by hand."""
    x = np.zeros((1, 3, 3, 1), np.float32)
    x[(0,) + spike + (0,)] = 1.0
    got = energy_lib.conv_sops(
        jnp.asarray(x), out_features=2, kernel_size=(3, 3), strides=(stride, stride), padding=((1, 1), (1, 1))
    )
    assert float(got) == expected


def test_conv_macs_formula_and_errors():
    assert energy_lib.conv_macs((16, 16), (3, 3), 64, 128) == 16 * 16 * 9 * 64 * 128
    assert energy_lib.conv_macs((4, 4), (3, 3), 8, 8, groups=2) == 16 * 9 * 4 * 8
    with pytest.raises(ValueError, match="groups"):
        energy_lib.conv_macs((4, 4), (3, 3), 7, 8, groups=2)
    with pytest.raises(ValueError, match="pJ"):
        analysis.EnergyModel(e_mac_pj=0.0)


# ------------------------------------------------------------------------------------------ ResNet


def _random_variables(model, x, seed=0):
    """Variables drawn directly (He-normal kernels, BN near identity with a positive bias so spikes
    reach the deep layers): no compile of ``model.init``, which is the slow part on a CPU."""
    shapes = jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, train=False))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        key, n = path[-1].key, leaf.shape
        if key == "kernel":
            return jnp.asarray(rng.normal(0.0, math.sqrt(2.0 / math.prod(n[:-1])), n), jnp.float32)
        values = {"scale": (0.6, 1.6), "bias": (0.0, 0.4), "mean": (-0.2, 0.2), "var": (0.5, 2.0)}[key]
        return jnp.asarray(rng.uniform(*values, n), jnp.float32)

    return {k: jax.tree_util.tree_map_with_path(draw, shapes[k]) for k in ("params", "batch_stats")}


def _tiny_resnet(neuron="lif", T=3):
    cfg = models.model_config(name="resnet18", neuron=neuron, time_steps=T if neuron != "relu" else 1, width=4)
    model = models.build_model(cfg, 5)
    x = jax.random.normal(jax.random.key(1), (3, 8, 8, 1)) * 2.0
    return model, _random_variables(model, x), x


def _windows(size_in, size_out, k, stride, pad):
    """fan[i] = number of (output o, tap j) with o*stride - pad + j == i (brute force)."""
    fan = np.zeros(size_in, np.int64)
    for o in range(size_out):
        for j in range(k):
            i = o * stride - pad + j
            if 0 <= i < size_in:
                fan[i] += 1
    return fan


def _numpy_sops(spikes, kernel_shape, stride, out_hw):
    """SOPs = sum over input neurons of spikes x fan-out (per-position fan-out by brute force)."""
    kh, _, _, cout = kernel_shape
    pad = (kh - 1) // 2
    fan_h = _windows(spikes.shape[1], out_hw[0], kh, stride, pad)
    fan_w = _windows(spikes.shape[2], out_hw[1], kh, stride, pad)
    per_position = spikes.sum(axis=(0, 3))  # [H, W] spikes over batch*time, channels
    return float((per_position * np.outer(fan_h, fan_w)).sum() * cout)


@pytest.fixture(scope="module")
def tiny():
    """A width-4 Spiking ResNet18 (T = 3) on 3 random 8x8 images and its report (compiled once)."""
    model, variables, x = _tiny_resnet()
    _, report = analysis.forward_with_stats(model, variables, x, raster_neurons=8)
    return model, variables, x, report


def test_resnet_sops_and_macs_against_numpy_fanout_and_param_shapes(tiny):
    model, variables, x, report = tiny
    # Second path: capture every spiking layer's output with Flax, count with NumPy.
    _, inter = jax.jit(
        lambda v, x: model.apply(
            v,
            x,
            train=False,
            capture_intermediates=lambda m, _: isinstance(m, layers.SpikingNeuron),
            mutable=["intermediates"],
        )
    )(variables, x)
    spikes = {
        "/".join(k.key for k in path[:-2]): np.asarray(v)
        for path, v in jax.tree_util.tree_leaves_with_path(inter["intermediates"])
    }
    assert set(spikes) == {n.path for n in report.neurons}
    for n in report.neurons:
        assert n.spikes == int(spikes[n.path].sum())
    params = variables["params"]
    size = {0: 8, 1: 4, 2: 2, 3: 1}
    expected_sops, expected_macs = {}, {}
    producer = "stem_act"
    for s in range(4):
        for b in range(2):
            blk = f"stage{s}_block{b}"
            stride = 2 if s > 0 and b == 0 else 1
            for conv, src, st in (
                ("conv1", producer, stride),
                ("conv2", f"{blk}/act1", 1),
                ("shortcut_conv", producer, stride),
            ):
                if conv not in params[blk]:
                    continue
                shape = params[blk][conv]["kernel"].shape
                expected_macs[f"{blk}/{conv}"] = size[s] ** 2 * math.prod(shape)
                expected_sops[f"{blk}/{conv}"] = _numpy_sops(spikes[src], shape, st, (size[s], size[s]))
            producer = f"{blk}/act_out"
    expected_macs["stem_conv"] = 64 * math.prod(params["stem_conv"]["kernel"].shape)
    expected_macs["head"] = math.prod(params["head"]["kernel"].shape)
    expected_sops["stem_conv"] = 0.0
    expected_sops["head"] = float(spikes[producer].sum()) * 5
    got_macs = {s.path: s.macs for s in report.synapses}
    got_sops = {s.path: s.sops for s in report.synapses}
    assert got_macs == expected_macs
    assert got_sops.keys() == expected_sops.keys()
    for k in expected_sops:
        assert got_sops[k] == pytest.approx(expected_sops[k], rel=1e-6), k
    assert sum(expected_sops.values()) > 0  # the check is not vacuous: spikes reach the convs
    assert report.ann_macs_per_example == sum(expected_macs.values())
    assert report.snn_macs_per_example == expected_macs["stem_conv"]


def test_single_step_snn_counts_convs_as_spikes_and_the_head_as_pooled():
    """T = 1: [B*T] == [B], so the kind comes from the layer type (ResNet head = pooled spikes)."""
    model, variables, x = _tiny_resnet(T=1)
    _, report = analysis.forward_with_stats(model, variables, x)
    kinds = {s.path: s.input_kind for s in report.synapses}
    assert kinds.pop("stem_conv") == "analog" and kinds.pop("head") == "rates"
    assert set(kinds.values()) == {"spikes"}
    last = report.neurons[-1]
    assert last.spikes > 0
    assert report.synapses[-1].sops == pytest.approx(last.spikes * 5, rel=1e-5)


class TinyANN(nn.Module):
    """conv 3x3 (pad 1, 4 channels) -> ReLU -> mean over space -> dense 3: an ANN, no spikes."""

    @nn.compact
    def __call__(self, x, *, train=False):
        del train
        x = layers.ReLU()(nn.Conv(4, (3, 3), padding=((1, 1), (1, 1)), name="conv")(x))
        return nn.Dense(3, name="head")(jnp.mean(x, axis=(1, 2)))


def test_ann_model_has_macs_and_no_spikes():
    model = TinyANN()
    x = jnp.ones((2, 5, 5, 2))
    variables = jax.jit(model.init)(jax.random.key(0), x)
    summary = analysis.spike_summary(model, variables, x)
    assert summary["mean_firing_rate"] is None and summary["firing_rates"] == {}
    assert summary["sops_per_example"] == 0
    ann = 5 * 5 * 9 * 2 * 4 + 4 * 3
    assert summary["snn_macs_per_example"] == summary["ann_macs_per_example"] == ann
    assert summary["energy_ratio"] == pytest.approx(1.0)


def test_plots_write_pngs(tmp_path, tiny):
    report = tiny[3]
    assert all(n.raster.shape == (3, 8) for n in report.neurons)
    for fn, name in (
        (plots.plot_firing_rates, "rates.png"),
        (plots.plot_raster, "raster.png"),
        (plots.plot_operations, "ops.png"),
    ):
        path = fn(report, str(tmp_path / name))
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert [n.path for n in plots.raster_layers(report, 3)] == [
        "stem_act",
        "stage1_block1/act_out",
        "stage3_block1/act_out",
    ]


# ------------------------------------------------------------------------------------------ CLI


def _fake_config():
    cfg = config_lib.base_config()
    cfg.data.name = "synthetic"
    cfg.data.options = ml_collections.ConfigDict({"image_shape": (8, 8, 1), "num_train": 16, "num_test": 12})
    cfg.data.batch_size = 8
    cfg.model.width = 4
    cfg.model.time_steps = 2
    cfg.train.epochs = 1
    return cfg


def _fake_run(workdir, cfg=None):
    """A workdir as the training loop leaves it: a checkpoint with the config item, metrics.jsonl."""
    cfg = cfg or _fake_config()
    model = models.build_model(cfg.model, 10)
    variables = _random_variables(model, jnp.zeros((1, 8, 8, 1)), seed=3)
    from snnjax.train import optim

    tx = optim.make_optimizer(cfg.optim, optim.learning_rate_schedule(cfg.optim, 2, 1))
    state = create_train_state(variables, tx, jax.random.key(0)).replace(step=jnp.asarray(2, jnp.int32))
    ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints", "train"), async_save=False)
    ckpt.save(2, state, meta={"epoch": 1}, config=cfg.to_dict(), metrics={"test_accuracy": 0.5})
    ckpt.wait()
    ckpt.close()
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        f.write(
            json.dumps(
                {
                    "stage": "train",
                    "kind": "epoch",
                    "step": 2,
                    "epoch": 1,
                    "train_loss": 2.0,
                    "train_accuracy": 0.2,
                    "test_loss": 2.1,
                    "test_accuracy": 0.5,
                }
            )
            + "\n"
        )
    return model, variables


def test_cli_restores_the_run_and_writes_tables_json_and_pngs(tmp_path, capsys):
    model, variables = _fake_run(str(tmp_path))
    assert analysis_main(["--workdir", str(tmp_path), "--num_examples", "12"]) == 0
    out = capsys.readouterr().out
    assert "stage 'train'" in out and "stem_act" in out and "ratio E_ANN / E_SNN" in out
    result = json.loads((tmp_path / "analysis.json").read_text())
    for name in ("firing_rates.png", "spike_raster.png", "operations.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    # Same numbers as a direct call on the same 12 normalised test images.
    from snnjax import data
    from snnjax.analysis import workdir as workdir_lib

    splits = data.load_dataset("synthetic", image_shape=(8, 8, 1), num_train=16, num_test=12)
    direct = analysis.spike_summary(model, variables, workdir_lib.test_inputs(splits, 12))
    assert result["num_examples"] == 12
    assert result["sops_per_example"] == pytest.approx(direct["sops_per_example"])
    assert result["neurons"]["stem_act"]["firing_rate"] == pytest.approx(direct["firing_rates"]["stem_act"])


def test_cli_names_a_missing_workdir(tmp_path, capsys):
    assert analysis_main(["--workdir", str(tmp_path / "nope")]) == 2
    assert "no checkpoints under" in capsys.readouterr().err


def test_load_run_normalises_with_the_runs_configured_constants(tmp_path):
    """Regression (issue 24b): a run trained with ``data.mean`` / ``data.std`` (SNN2ANN's official
    constants) was analysed with the dataset's own statistics; analysis must see what training saw."""
    from snnjax.analysis import workdir as workdir_lib

    cfg = _fake_config()
    cfg.data.mean, cfg.data.std = (0.25,), (0.125,)
    _fake_run(str(tmp_path), cfg)
    run = workdir_lib.load_run(str(tmp_path), mesh=mesh_lib.make_mesh())
    assert (run.splits.mean, run.splits.std) == ((0.25,), (0.125,))
    images = np.asarray(run.splits.test.images[:3], np.float32)
    np.testing.assert_allclose(workdir_lib.test_inputs(run.splits, 3), (images / 255 - 0.25) / 0.125, rtol=1e-5)


def test_load_run_normalises_by_the_configured_name(tmp_path):
    from snnjax.analysis import workdir as workdir_lib

    cfg = _fake_config()
    cfg.data.normalization = "symmetric"
    _fake_run(str(tmp_path), cfg)
    assert (workdir_lib.load_run(str(tmp_path), mesh=mesh_lib.make_mesh()).splits.std) == (0.5,)


def test_psn_time_macs_count_the_nonzero_entries_of_the_time_weight():
    assert energy_lib.psn_time_macs("full", 4, 2) == 16
    assert energy_lib.psn_time_macs("masked", 4, 2, lam=0.5) == 16  # not yet masked: every entry
    assert energy_lib.psn_time_macs("masked", 4, 2, lam=1.0) == 1 + 2 + 2 + 2
    assert energy_lib.psn_time_macs("sliding", 3, 5) == 1 + 2 + 3  # k > T: the whole lower triangle
    with pytest.raises(ValueError, match="unknown PSN variant"):
        energy_lib.psn_time_macs("diag", 4, 2)


def test_a_psn_resnet_counts_its_neurons_mixing_over_time_as_analog_macs():
    # Width 4 on 8x8, T = 3, sliding k = 2: 5 MACs per neuron (1 + 2 + 2). Neurons per step, by hand:
    # stem 8*8*4 = 256; stage0 2 blocks x 2 neurons x 256; stage1 2 x 2 x 4*4*8; stage2 2 x 2 x 2*2*16;
    # stage3 2 x 2 x 32 -> 256 + 1024 + 512 + 256 + 128 = 2176.
    cfg = models.model_config(name="resnet18", neuron="psn", psn_variant="sliding", psn_order=2, time_steps=3, width=4)
    model = models.build_model(cfg, 5)
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
    variables = jax.jit(lambda: model.init(jax.random.key(0), x, train=False))()
    _, report = analysis.forward_with_stats(model, variables, x)
    assert sum(n.num_neurons for n in report.neurons) == 2176
    assert sum(n.time_macs for n in report.neurons) == 2176 * 5
    synaptic = sum(s.executed_macs for s in report.synapses)
    assert synaptic > 0 and report.snn_macs_per_example == synaptic + 2176 * 5
    assert report.energy().snn_pj == pytest.approx(
        report.sops_per_example * energy_lib.E_AC_PJ + (synaptic + 10880) * energy_lib.E_MAC_PJ
    )


def test_a_ramped_masked_psn_counts_the_macs_of_the_lambda_it_was_trained_at():
    # Masked k = 2 at T = 3 ramped over 4 epochs: lambda 0.5 after epoch 2 (every entry, 3 * 3 = 9 MACs per
    # neuron), 1.0 after epoch 4 (the band: 1 + 2 + 2 = 5); the same 2176 neurons as the sliding ResNet above.
    cfg = models.model_config(
        name="resnet18", neuron="psn", psn_variant="masked", psn_order=2, psn_lambda_epochs=4.0, time_steps=3, width=4
    )
    model = models.build_model(cfg, 5)
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
    variables = jax.jit(lambda: model.init(jax.random.key(0), x, train=False))()
    for epoch, per_neuron in ((2.0, 9), (4.0, 5)):
        fed = {**variables, **epoch_clock.feed_epoch(dict(variables), jnp.float32(epoch))}
        _, report = analysis.forward_with_stats(model, fed, x)
        assert sum(n.time_macs for n in report.neurons) == 2176 * per_neuron, epoch
