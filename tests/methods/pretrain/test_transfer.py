"""Pretraining transfer: the ANN twin, the ANN -> SNN tree copy and its report, the epoch-fed step."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from snnjax import layers, models
from snnjax.methods.pretrain import transfer
from snnjax.methods.pretrain.sharpened import SharpenedReLU

NUM_CLASSES = 3
TINY_SNN = dict(name="resnet18", width=4, neuron="lif", time_steps=2)


def pretrain_cfg(**overrides):
    cfg = ml_collections.ConfigDict(
        dict(activation="relu", sharpen_horizon_epochs=0, bn_scale_init=0.5, train=dict(epochs=10))
    )
    cfg.update(overrides)
    return cfg


def numbered(model, sample, offset):
    """The model's params + batch_stats with unique numbers per leaf (shapes via eval_shape, no compile)."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), sample, train=False))
    shapes = {k: shapes[k] for k in ("params", "batch_stats")}
    leaves, treedef = jax.tree.flatten(shapes)
    values = [
        (offset + 1000.0 * k + np.arange(np.prod(s.shape))).reshape(s.shape).astype(np.float32)
        for k, s in enumerate(leaves)
    ]
    return jax.tree.unflatten(treedef, values)


def flat(tree):
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
        for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


# ---------------------------------------------------------------------------------------------- ANN twin


def test_ann_twin_has_the_snn_layout_and_tdbn_gamma():
    snn_cfg = models.model_config(**TINY_SNN)
    ann = transfer.build_ann(snn_cfg, NUM_CLASSES, pretrain_cfg())
    snn = models.build(snn_cfg, NUM_CLASSES)
    assert ann.time_steps == 1 and ann.bn_scale_init == 0.5 and ann.activation is layers.ReLU
    x = jnp.zeros((1, 8, 8, 3))

    def shapes(model):
        tree = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
        return {
            jax.tree_util.keystr(p): v.shape
            for p, v in jax.tree_util.tree_flatten_with_path({c: tree[c] for c in ("params", "batch_stats")})[0]
        }

    assert shapes(ann) == shapes(snn) and len(shapes(ann)) == 102
    # Values need a real init; a 2-stage clone of the twin compiles in a fraction of the time and
    # shares the BN factory (stem, block and shortcut BNs).
    small = ann.clone(stage_sizes=(1, 1))
    params = jax.jit(lambda k: small.init(k, x, train=False))(jax.random.key(0))["params"]
    scales = [v for p, v in flat(params).items() if p.endswith("scale")]
    assert len(scales) == 1 + 2 * 2 + 1 and all(np.all(s == 0.5) for s in scales)
    sharp = transfer.build_ann(snn_cfg, NUM_CLASSES, pretrain_cfg(activation="sharpened"))
    assert sharp.activation.func is SharpenedReLU and sharp.activation.keywords["horizon_epochs"] == 20.0


# ---------------------------------------------------------------------------------------------- transfer


def test_pipe_s_load_copies_every_leaf_exactly():
    cfg = models.model_config(**TINY_SNN)
    x = jnp.zeros((1, 8, 8, 3))
    ann_vars = numbered(transfer.build_ann(cfg, NUM_CLASSES, pretrain_cfg()), x, offset=0.0)
    snn_vars = numbered(models.build(cfg, NUM_CLASSES), x, offset=0.5)  # every value differs from the ANN's
    loaded, report = transfer.load_pretrained(ann_vars, snn_vars)
    ann_flat, loaded_flat = flat(ann_vars), flat(loaded)
    assert loaded_flat.keys() == ann_flat.keys() and len(ann_flat) == 102
    for path, value in ann_flat.items():
        np.testing.assert_array_equal(loaded_flat[path], value, err_msg=path)
    assert len(report.copied) == 102 and report.kept == 0 and report.unused == ()
    assert any(p.startswith("batch_stats/") and p.endswith("/mean") for p in report.copied)
    assert "params/head/kernel" in report.copied


def test_pipe_d_load_copies_every_leaf_but_the_first_conv():
    cfg = models.model_config(**TINY_SNN)
    ann_vars = numbered(transfer.build_ann(cfg, NUM_CLASSES, pretrain_cfg()), jnp.zeros((1, 8, 8, 1)), offset=0.0)
    events = jnp.zeros((1, 2, 8, 8, 2))  # [B, T, H, W, 2 polarities]
    snn_vars = numbered(models.build(cfg, NUM_CLASSES), events, offset=0.5)
    with pytest.raises(ValueError, match=r"params/stem_conv/kernel.*\(3, 3, 1, 4\).*\(3, 3, 2, 4\).*reinit"):
        transfer.load_pretrained(ann_vars, snn_vars)
    loaded, report = transfer.load_pretrained(ann_vars, snn_vars, reinit=("stem_conv",))
    ann_flat, snn_flat, loaded_flat = flat(ann_vars), flat(snn_vars), flat(loaded)
    assert report.kept_paths("re-initialised") == ("params/stem_conv/kernel",) and len(report.copied) == 101
    for path, value in loaded_flat.items():
        expected = snn_flat[path] if path == "params/stem_conv/kernel" else ann_flat[path]
        np.testing.assert_array_equal(value, expected, err_msg=path)


def test_transfer_reports_kept_and_unused_leaves_and_rejects_unknown_modules():
    cfg = models.model_config(**TINY_SNN)
    x = jnp.zeros((1, 8, 8, 3))
    ann_vars = numbered(transfer.build_ann(cfg, NUM_CLASSES, pretrain_cfg()), x, 0.0)
    ann_vars["schedule"] = {"stem_act": {"epoch": np.float32(3)}}  # the sharpened ReLU's counter
    plif = models.build(models.model_config(**{**TINY_SNN, "neuron": "plif"}), NUM_CLASSES)
    plif_vars = numbered(plif, x, 0.5)
    loaded, report = transfer.load_pretrained(ann_vars, plif_vars)
    assert report.unused == ("schedule/stem_act/epoch",) and "schedule" not in loaded
    kept = report.kept_paths("not in the source")
    assert len(kept) == report.kept == 1 + 8 * 2 and all(p.endswith("decay_logit") for p in kept)
    assert len(report.copied) == 102
    with pytest.raises(ValueError, match="'stem_cnv'.*matches no module"):
        transfer.load_pretrained(ann_vars, plif_vars, reinit=("stem_cnv",))


# ---------------------------------------------------------------------------------------------- official options


def test_load_momentum_copies_loaded_buffers_and_keeps_the_schedule_fresh():
    params = {"a": {"kernel": np.ones((2, 2), np.float32)}, "b": {"kernel": np.ones((3,), np.float32)}}
    sgd = optax.sgd(optax.piecewise_constant_schedule(0.1, {2: 0.3}), momentum=0.9)
    source = sgd.init(params)
    trace = {"a": {"kernel": np.full((2, 2), 5.0, np.float32)}, "b": {"kernel": np.full((3,), 7.0, np.float32)}}
    source = (source[0]._replace(trace=trace), source[1])
    out = transfer.load_momentum(sgd.init(params), source, ("params/a/kernel",))
    np.testing.assert_array_equal(out[0].trace["a"]["kernel"], 5.0)  # loaded
    np.testing.assert_array_equal(out[0].trace["b"]["kernel"], 0.0)  # not loaded: stays zero
    with pytest.raises(ValueError, match="momentum"):
        transfer.load_momentum(optax.adam(1e-3).init(params), source, ("params/a/kernel",))


def test_freeze_loaded_trains_only_the_new_modules():
    from snnjax.train import optim

    params = {"stem_conv": {"kernel": np.ones((2,), np.float32)}, "body": {"kernel": np.ones((2,), np.float32)}}
    mask = transfer.trainable_mask(params, ("params/body/kernel",))
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
        net = models.build(models.model_config(name="resnet18", neuron="relu", time_steps=1, width=4, stem=stem), 3)
        variables = net.init(jax.random.key(0), x, train=False)
        _, inter = net.apply(
            variables,
            x,
            train=False,
            mutable=["intermediates"],
            capture_intermediates=lambda m, _: m.name == "stage0_block0",
        )
        shapes[stem] = jax.tree.leaves(inter)[0].shape
        assert ("shortcut_conv" in variables["params"]["stage0_block0"]) == (stem == "imagenet_nopool")
    assert shapes["imagenet_nopool"] == shapes["imagenet"] == (1, 8, 8, 4)
