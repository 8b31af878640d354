"""Pretraining pipeline (pipe-S / pipe-D): the ANN twin, the exact tree copy into the SNN, the
sharpened ReLU and its epoch feeding, the config presets, and both pipes end to end via launch.py."""

import functools
import importlib.util
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from snnjax import layers, models
from snnjax.pipelines import pretrain as pt
from snnjax.train.state import create_train_state


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = 3
TINY_SNN = dict(name="resnet18", width=4, neuron="lif", time_steps=2)


def pretrain_cfg(**overrides):
    cfg = ml_collections.ConfigDict(dict(activation="relu", sharpen_horizon_epochs=0, bn_scale_init=0.5,
                                         train=dict(epochs=10)))
    cfg.update(overrides)
    return cfg


def numbered(model, sample, offset):
    """The model's params + batch_stats with unique numbers per leaf (shapes via eval_shape, no compile)."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), sample, train=False))
    shapes = {k: shapes[k] for k in ("params", "batch_stats")}
    leaves, treedef = jax.tree.flatten(shapes)
    values = [(offset + 1000.0 * k + np.arange(np.prod(s.shape))).reshape(s.shape).astype(np.float32)
              for k, s in enumerate(leaves)]
    return jax.tree.unflatten(treedef, values)


def flat(tree):
    return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


# ---------------------------------------------------------------------------------------------- ANN twin


def test_ann_twin_has_the_snn_layout_and_tdbn_gamma():
    snn_cfg = models.model_config(**TINY_SNN)
    ann = pt.build_ann(snn_cfg, NUM_CLASSES, pretrain_cfg())
    snn = models.build_model(snn_cfg, NUM_CLASSES)
    assert ann.time_steps == 1 and ann.bn_scale_init == 0.5 and ann.activation is layers.ReLU
    x = jnp.zeros((1, 8, 8, 3))

    def shapes(model):
        tree = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
        return {jax.tree_util.keystr(p): v.shape for p, v in jax.tree_util.tree_flatten_with_path(
            {c: tree[c] for c in ("params", "batch_stats")})[0]}

    assert shapes(ann) == shapes(snn) and len(shapes(ann)) == 102
    # Values need a real init; a 2-stage clone of the twin compiles in a fraction of the time and
    # shares the BN factory (stem, block and shortcut BNs).
    small = ann.clone(stage_sizes=(1, 1))
    params = jax.jit(lambda k: small.init(k, x, train=False))(jax.random.key(0))["params"]
    scales = [v for p, v in flat(params).items() if p.endswith("scale")]
    assert len(scales) == 1 + 2 * 2 + 1 and all(np.all(s == 0.5) for s in scales)
    sharp = pt.build_ann(snn_cfg, NUM_CLASSES, pretrain_cfg(activation="sharpened"))
    assert sharp.activation.func is layers.SharpenedReLU and sharp.activation.keywords["horizon_epochs"] == 20.0


# ---------------------------------------------------------------------------------------------- transfer


def test_pipe_s_load_copies_every_leaf_exactly():
    cfg = models.model_config(**TINY_SNN)
    x = jnp.zeros((1, 8, 8, 3))
    ann_vars = numbered(pt.build_ann(cfg, NUM_CLASSES, pretrain_cfg()), x, offset=0.0)
    snn_vars = numbered(models.build_model(cfg, NUM_CLASSES), x, offset=0.5)   # every value differs from the ANN's
    loaded, report = pt.load_pretrained(ann_vars, snn_vars)
    ann_flat, loaded_flat = flat(ann_vars), flat(loaded)
    assert loaded_flat.keys() == ann_flat.keys() and len(ann_flat) == 102
    for path, value in ann_flat.items():
        np.testing.assert_array_equal(loaded_flat[path], value, err_msg=path)
    assert len(report.copied) == 102 and report.reinitialised == () and report.kept == () and report.unused == ()
    assert any(p.startswith("batch_stats/") and p.endswith("/mean") for p in report.copied)
    assert "params/head/kernel" in report.copied


def test_pipe_d_load_copies_every_leaf_but_the_first_conv():
    cfg = models.model_config(**TINY_SNN)
    ann_vars = numbered(pt.build_ann(cfg, NUM_CLASSES, pretrain_cfg()), jnp.zeros((1, 8, 8, 1)), offset=0.0)
    events = jnp.zeros((1, 2, 8, 8, 2))                                          # [B, T, H, W, 2 polarities]
    snn_vars = numbered(models.build_model(cfg, NUM_CLASSES), events, offset=0.5)
    with pytest.raises(ValueError, match=r"params/stem_conv/kernel.*\(3, 3, 1, 4\).*\(3, 3, 2, 4\).*reinit"):
        pt.load_pretrained(ann_vars, snn_vars)
    loaded, report = pt.load_pretrained(ann_vars, snn_vars, reinit=("stem_conv",))
    ann_flat, snn_flat, loaded_flat = flat(ann_vars), flat(snn_vars), flat(loaded)
    assert report.reinitialised == ("params/stem_conv/kernel",) and len(report.copied) == 101
    for path, value in loaded_flat.items():
        expected = snn_flat[path] if path == "params/stem_conv/kernel" else ann_flat[path]
        np.testing.assert_array_equal(value, expected, err_msg=path)


def test_transfer_reports_kept_and_unused_leaves_and_rejects_unknown_modules():
    cfg = models.model_config(**TINY_SNN)
    x = jnp.zeros((1, 8, 8, 3))
    ann_vars = numbered(pt.build_ann(cfg, NUM_CLASSES, pretrain_cfg()), x, 0.0)
    ann_vars["schedule"] = {"stem_act": {"epoch": np.float32(3)}}                 # the sharpened ReLU's counter
    plif = models.build_model(models.model_config(**{**TINY_SNN, "neuron": "plif"}), NUM_CLASSES)
    plif_vars = numbered(plif, x, 0.5)
    loaded, report = pt.load_pretrained(ann_vars, plif_vars)
    assert report.unused == ("schedule/stem_act/epoch",) and "schedule" not in loaded
    assert len(report.kept) == 1 + 8 * 2 and all(p.endswith("decay_logit") for p in report.kept)
    assert len(report.copied) == 102
    with pytest.raises(ValueError, match="'stem_cnv'.*matches no module"):
        pt.load_pretrained(ann_vars, plif_vars, reinit=("stem_cnv",))


# ---------------------------------------------------------------------------------------------- sharpened ReLU


@pytest.mark.parametrize("epoch,a,b", [(0, 0.0, 1.0), (50, 0.25, 0.75), (100, 0.49, 0.5), (160, 0.49, 0.5)])
def test_sharpened_relu_forward_and_gradient(epoch, a, b):
    act = layers.SharpenedReLU(horizon_epochs=200.0)
    x = jnp.asarray(np.linspace(-0.5, 1.5, 41) + 0.013, jnp.float32)   # no point exactly on a kink
    variables = {"schedule": {"epoch": jnp.float32(epoch)}}
    y = act.apply(variables, x)
    np.testing.assert_allclose(y, np.clip((np.asarray(x) - a) / (b - a), 0, 1), atol=1e-6)
    grad = jax.grad(lambda v: act.apply(variables, v).sum())(x)
    np.testing.assert_array_equal(grad, ((np.asarray(x) > 0) & (np.asarray(x) < 1)).astype(np.float32))


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
        del train
        return nn.Dense(2)(layers.SharpenedReLU(horizon_epochs=4.0)(nn.Dense(3)(x)))


def test_epoch_fed_step_writes_the_one_based_epoch_before_each_forward():
    model = _Tiny()
    variables = model.init(jax.random.key(0), jnp.ones((2, 3)), train=False)
    state = create_train_state(dict(variables), optax.sgd(0.1), jax.random.key(1))
    step = jax.jit(pt.epoch_fed_step(steps_per_epoch=2)(model, optax.sgd(0.1)))
    batch = (jnp.ones((2, 3)), jnp.array([0, 1], jnp.int32))
    seen = []
    for _ in range(5):
        state, metrics = step(state, batch)
        seen.append(float(state.model_state["schedule"]["SharpenedReLU_0"]["epoch"]))
        assert float(metrics["finite"]) == 1.0
    assert seen == [1.0, 1.0, 2.0, 2.0, 3.0]   # steps 0..4 with 2 steps per epoch
    unchanged = pt.feed_epoch({"batch_stats": {"m": jnp.zeros(2)}}, jnp.float32(7))
    assert unchanged == {"batch_stats": unchanged["batch_stats"]}


# ---------------------------------------------------------------------------------------------- configs


@functools.lru_cache
def config_module():
    spec = importlib.util.spec_from_file_location("pretrain_config", os.path.join(ROOT, "configs", "pretrain.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_presets():
    get = config_module().get_config
    s = get("pipe_s,digits")
    assert s.pipeline == "pretrain" and s.data.name == "digits"
    assert s.pretrain.data.name == "" and s.pretrain.reinit == ""
    model = (s.model.neuron, s.model.time_steps, s.model.decay, s.model.v_threshold, s.model.reset, s.model.surrogate)
    assert model == ("lif", 6, 0.25, 0.5, "hard", "rectangular")
    assert s.optim.milestones == (2, 4, 6, 8) and s.optim.gamma == 0.3 and s.pretrain.enabled
    assert s.pretrain.activation == "sharpened" and s.pretrain.load_optimizer_state and not s.pretrain.freeze_loaded
    d = get("pipe_d,digits")                                  # official pipe-D: new stem + FC, the rest frozen
    assert d.data.name == "digits_events" and d.pretrain.data.name == "digits"
    assert d.pretrain.reinit == "stem_conv,stem_bn,head" and d.pretrain.freeze_loaded
    assert d.optim.name == "adam" and d.optim.lr == 1e-3 and d.optim.weight_decay == 1e-4
    full = get("pipe_d,digits,full")
    assert full.pretrain.reinit == "stem_conv" and not full.pretrain.freeze_loaded and full.optim.name == "sgd"
    c10 = get("pipe_d,cifar10")
    assert c10.train.epochs == 60 and c10.optim.milestones == (20, 30, 40) and get("pipe_s,cifar10").train.epochs == 50
    f = get("pipe_d,fashion_mnist")
    assert f.data.name == "fashion_mnist_events" and f.pretrain.data.name == "fashion_mnist"
    d.model.time_steps = 4                                    # the event T follows the model's T
    assert dict(d.data.options) == {"time_steps": 4}
    c = get("pipe_d,cifar10,scratch,sharpened")
    assert c.data.name == "cifar10_events" and c.pretrain.data.name == "cifar10" and not c.pretrain.enabled
    assert c.pretrain.activation == "sharpened" and c.model.width == 64
    with pytest.raises(ValueError, match="pipe_x"):
        get("pipe_x")


def test_event_time_steps_must_match_the_model():
    cfg = config_module().get_config("pipe_d,digits")
    pt.check_event_steps(cfg, (8, 8, 1), "static")            # static images: nothing to check
    pt.check_event_steps(cfg, (6, 8, 8, 2), "events")
    with pytest.raises(ValueError, match=r"4 frames.*time_steps=6.*data.options.time_steps"):
        pt.check_event_steps(cfg, (4, 8, 8, 2), "events")


# ---------------------------------------------------------------------------------------------- end to end


TINY = ["--config.model.width=4", "--config.model.time_steps=2", "--config.train.epochs=1",
        "--config.pretrain.train.epochs=1", "--config.train.progress_bar=False", "--config.train.tensorboard=False",
        "--config.pretrain.train.progress_bar=False", "--config.pretrain.train.tensorboard=False"]


# Compile-speed flags for the subprocesses only: LLVM's expensive passes are ~40% of the CPU time
# of these tiny runs, and the tests check behaviour, not speed.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def run_pipe(workdir, preset, *overrides):
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), f"--config=configs/pretrain.py:{preset}",
           f"--workdir={workdir}", *TINY, *overrides]
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip())
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
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
    assert summary["transfer"]["unused"] == sorted(["schedule/stem_act/epoch"] + [
        f"schedule/stage{s}_block{b}/{a}/epoch" for s in range(4) for b in range(2) for a in ("act1", "act_out")])
    assert summary["pretrain"]["activation"] == "sharpened" and summary["pretrain"]["steps"] == 1437 // 64
    assert stages == {"pretrain", "finetune"}
    assert (wd / "transfer_report.txt").read_text().startswith("copied (102):")


def test_pipe_d_end_to_end_on_event_frames(pipe_s_workdir, tmp_path):
    # Stage 1 is restored from the pipe-S run (same static digits ANN): pipe-D's own work is the
    # event data, the partial load and the fine-tuning on [B, T, H, W, 2] frames.
    source = pipe_s_workdir[0]
    summary, stages = run_pipe(tmp_path / "pipe_d", "pipe_d,digits,sharpened,full",
                               f"--config.pretrain.checkpoint={source}", "--config.pretrain.eval_transfer=False")
    assert 0.0 <= summary["best_test_accuracy"] <= 1.0
    assert summary["dataset"] == "digits_events" and summary["input"] == "events"
    assert summary["pretrain"]["restored_from"] == str(source) and summary["pretrain"]["best_step"] == 1437 // 64
    assert summary["transfer"]["copied"] == 101 and summary["transfer"]["reinitialised"] == ["params/stem_conv/kernel"]
    assert stages == {"finetune"}


# ---------------------------------------------------------------------------------------------- official options


def test_load_momentum_copies_loaded_buffers_and_keeps_the_schedule_fresh():
    import optax

    params = {"a": {"kernel": np.ones((2, 2), np.float32)}, "b": {"kernel": np.ones((3,), np.float32)}}
    sgd = optax.sgd(optax.piecewise_constant_schedule(0.1, {2: 0.3}), momentum=0.9)
    source = sgd.init(params)
    source = jax.tree.map(lambda x: x, source)
    trace = {"a": {"kernel": np.full((2, 2), 5.0, np.float32)}, "b": {"kernel": np.full((3,), 7.0, np.float32)}}
    source = (source[0]._replace(trace=trace), source[1])
    target = sgd.init(params)
    out = pt.load_momentum(target, source, ("params/a/kernel",))
    np.testing.assert_array_equal(out[0].trace["a"]["kernel"], 5.0)       # loaded
    np.testing.assert_array_equal(out[0].trace["b"]["kernel"], 0.0)       # not loaded: stays zero
    with pytest.raises(ValueError, match="momentum"):
        pt.load_momentum(optax.adam(1e-3).init(params), source, ("params/a/kernel",))


def test_freeze_loaded_trains_only_the_new_modules():
    import optax

    from snnjax.train import optim

    params = {"stem_conv": {"kernel": np.ones((2,), np.float32)}, "body": {"kernel": np.ones((2,), np.float32)}}
    mask = pt.trainable_mask(params, ("params/body/kernel",))
    assert mask == {"stem_conv": {"kernel": True}, "body": {"kernel": False}}
    tx = optim.freeze(optax.chain(optax.add_decayed_weights(1e-1), optax.adam(1e-1)), mask)
    grads = jax.tree.map(np.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert float(np.abs(updates["body"]["kernel"]).max()) == 0.0
    assert float(np.abs(updates["stem_conv"]["kernel"]).max()) > 0.0


def test_imagenet_nopool_stem_has_the_official_layout():
    """7x7/2 stem, no max-pool, first stage stride 2 (a projection shortcut in stage0_block0);
    torchvision's max-pool stem keeps stage 0 at stride 1. Both end at the same size."""
    x = np.zeros((1, 32, 32, 3), np.float32)
    shapes = {}
    for stem in ("imagenet_nopool", "imagenet"):
        net = models.build_model(models.model_config(name="resnet18", neuron="relu", time_steps=1, width=4,
                                                     stem=stem), 3)
        variables = net.init(jax.random.key(0), x, train=False)
        _, inter = net.apply(variables, x, train=False, mutable=["intermediates"],
                             capture_intermediates=lambda m, _: m.name == "stage0_block0")
        shapes[stem] = jax.tree.leaves(inter)[0].shape
        assert ("shortcut_conv" in variables["params"]["stage0_block0"]) == (stem == "imagenet_nopool")
    assert shapes["imagenet_nopool"] == shapes["imagenet"] == (1, 8, 8, 4)
