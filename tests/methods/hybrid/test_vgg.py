"""VGG for ANN and SNN: parameter trees, a NumPy forward pass, encodings, dropout, output layer."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import models, surrogates
from snnjax.methods.hybrid import vgg
from snnjax.methods.hybrid.neuron import HybridNeuron

IF = functools.partial(HybridNeuron)


def _shapes(model, image):
    def init():
        rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1), "encoding": jax.random.key(2)}
        return model.init(rngs, jnp.zeros((2,) + image), train=False)

    return jax.eval_shape(init)


def test_vgg16_cifar_layout_and_parameter_count():
    ann = vgg.VGG(vgg.ARCHS["vgg16"], 10)
    params = _shapes(ann, (32, 32, 3))["params"]
    assert set(params) == {f"conv{i}" for i in range(13)} | {"fc0", "fc1", "head"}
    assert params["fc0"]["kernel"].shape == (512 * 2 * 2, 4096)  # 32x32 after 4 poolings: 2x2
    assert params["head"]["kernel"].shape == (4096, 10)
    channels = [c for c in vgg.ARCHS["vgg16"] if c != "A"]
    convs = sum(9 * cin * cout for cin, cout in zip([3] + channels[:-1], channels))
    expected = convs + 2048 * 4096 + 4096 * 4096 + 4096 * 10  # no biases anywhere
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)) == expected


def test_flatten_size_follows_input_and_width():
    params = _shapes(vgg.VGG(vgg.ARCHS["vgg5"], 10, width=16), (8, 8, 1))["params"]
    assert params["conv0"]["kernel"].shape == (3, 3, 1, 16)
    assert params["fc0"]["kernel"].shape == (32 * 2 * 2, 1024)  # 8x8 / 4 = 2x2, 128 * 16/64 = 32


def test_ann_and_snn_parameter_trees_are_identical():
    ann = _shapes(vgg.VGG(vgg.ARCHS["vgg11"], 10, width=8), (32, 32, 3))
    snn = _shapes(
        vgg.VGG(vgg.ARCHS["vgg11"], 10, width=8, activation=IF, time_steps=5, encoding="poisson"), (32, 32, 3)
    )
    assert jax.tree.structure(ann["params"]) == jax.tree.structure(snn["params"])
    assert jax.tree.map(lambda a: a.shape, ann["params"]) == jax.tree.map(lambda a: a.shape, snn["params"])
    assert set(ann) == {"params"}
    assert set(snn["thresholds"]) == {n + "_act" for n in vgg.spiking_layer_names(vgg.ARCHS["vgg11"])}


def _np_conv3x3(x, kernel):
    """NumPy 'same' 3x3 convolution, NHWC x HWIO."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy : dy + h, dx : dx + w, :] @ kernel[dy, dx]
    return out


def test_ann_forward_matches_numpy():
    arch = (64, "A", 128)  # width 8: 8 then 16 channels
    model = vgg.VGG(arch, 5, width=8, dense_init="he")
    x = np.asarray(jax.random.normal(jax.random.key(3), (2, 4, 4, 3)))
    params = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), x)["params"]
    p = jax.tree.map(np.asarray, params)
    h = np.maximum(_np_conv3x3(x, p["conv0"]["kernel"]), 0)
    h = h.reshape(2, 2, 2, 2, 2, 8).mean(axis=(2, 4))  # 2x2 average pooling
    h = np.maximum(_np_conv3x3(h, p["conv1"]["kernel"]), 0).reshape(2, -1)
    h = np.maximum(h @ p["fc0"]["kernel"], 0)
    h = np.maximum(h @ p["fc1"]["kernel"], 0)
    want = h @ p["head"]["kernel"]
    got = jax.jit(functools.partial(model.apply, train=False))({"params": params}, x)
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=1e-5)


def test_poisson_encoding_rate_and_sign():
    x = jnp.array([[-1.0, -0.6, -0.2, 0.0, 0.3, 0.75, 1.0, 1.7]])
    spikes = np.asarray(vgg.poisson_encode(jax.random.key(0), x, 4000))
    assert spikes.shape == (1, 4000, 8)
    assert set(np.unique(spikes)) <= {-1.0, 0.0, 1.0}
    rates = np.abs(spikes).mean(axis=1)[0]
    np.testing.assert_allclose(rates, np.minimum(np.abs(np.asarray(x[0])), 1.0), atol=0.025)  # binomial 3 sigma
    assert (spikes[0][:, np.asarray(x[0]) < 0] <= 0).all() and (spikes[0][:, np.asarray(x[0]) > 0] >= 0).all()
    other = np.asarray(vgg.poisson_encode(jax.random.key(1), x, 4000))
    assert (other != spikes).any()  # the key drives the draws


def test_dropout_mask_shared_across_time_steps():
    b, t, f, rate = 6, 5, 400, 0.3
    drop = vgg.TimeSharedDropout(rate)
    ones = jnp.ones((b * t, f))
    out = np.asarray(drop.apply({}, ones, t, deterministic=False, rngs={"dropout": jax.random.key(0)}))
    per_step = out.reshape(b, t, f)
    for step in range(1, t):
        np.testing.assert_array_equal(per_step[:, step], per_step[:, 0])
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / (1 - rate)], rtol=1e-6)
    assert abs((per_step[:, 0] == 0).mean() - rate) < 0.05
    assert (per_step[0, 0] != per_step[1, 0]).any()  # examples get their own masks
    np.testing.assert_array_equal(drop.apply({}, ones, t, deterministic=True), ones)


def test_dropout_mask_reused_at_every_step_inside_the_snn():
    # Direct encoding, thresholds tiny: every neuron fires at every step, so the dropout mask is the
    # only thing that varies the fc1 spikes; the head input must be identical at every step.
    model = vgg.VGG((64,), 3, width=4, activation=IF, time_steps=4, classifier_dropout=0.5, dense_init="he")
    x = jnp.ones((2, 2, 2, 1))
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), x)
    variables = {
        "params": variables["params"],
        "thresholds": jax.tree.map(lambda v: v * 0 + 1e-6, variables["thresholds"]),
    }
    _, inter = model.apply(
        variables,
        x,
        train=True,
        rngs={"dropout": jax.random.key(5)},
        capture_intermediates=True,
        mutable=["intermediates"],
    )
    after = np.asarray(inter["intermediates"]["fc1_dropout"]["__call__"][0]).reshape(2, 4, -1)
    for step in range(1, 4):
        np.testing.assert_array_equal(after[:, step], after[:, 1])
    assert 0 < (after[:, 1] == 0).mean() < 1


def test_snn_output_is_head_of_summed_spikes():
    model = vgg.VGG((64, "A"), 4, width=8, activation=IF, time_steps=6, encoding="poisson", dense_init="he")
    x = jax.random.uniform(jax.random.key(1), (3, 4, 4, 2), minval=-1, maxval=1)
    variables = jax.jit(functools.partial(model.init, train=False))(
        {"params": jax.random.key(0), "encoding": jax.random.key(1)}, x
    )
    variables = {
        "params": variables["params"],
        "thresholds": jax.tree.map(lambda v: v * 0 + 0.05, variables["thresholds"]),
    }
    logits, inter = model.apply(
        variables,
        x,
        train=False,
        rngs={"encoding": jax.random.key(7)},
        capture_intermediates=True,
        mutable=["intermediates"],
    )
    spikes = np.asarray(inter["intermediates"]["fc1_act"]["__call__"][0]).reshape(3, 6, -1)
    assert set(np.unique(spikes)) == {0.0, 1.0}
    want = spikes.sum(axis=1) @ np.asarray(variables["params"]["head"]["kernel"])
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-5, atol=1e-5)


def test_probe_returns_the_layer_input_current():
    model = vgg.VGG((64,), 2, width=4, activation=IF, time_steps=3)
    x = jax.random.normal(jax.random.key(0), (2, 3, 3, 1))
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), x)
    current = model.clone(probe="conv0").apply({"params": variables["params"]}, x, train=False)
    assert current.shape == (2, 3, 3, 3, 4)
    want = _np_conv3x3(np.asarray(x), np.asarray(variables["params"]["conv0"]["kernel"]))
    for t in range(3):  # direct encoding: the same current every step
        np.testing.assert_allclose(np.asarray(current[:, t]), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="probe"):
        model.clone(probe="conv7").apply({"params": variables["params"]}, x, train=False)


def test_snn_without_thresholds_fails_with_the_fix():
    model = vgg.VGG((64,), 2, width=4, activation=IF, time_steps=2)
    x = jnp.ones((1, 2, 2, 1))
    params = model.init(jax.random.key(0), x, train=False)["params"]
    with pytest.raises(ValueError, match="snn_variables"):
        model.apply({"params": params}, x, train=False)


def test_build_vgg_validates_config():
    cfg = vgg.vgg_config(name="vgg5", width=4, neuron="relu", time_steps=3, encoding="direct")
    with pytest.raises(ValueError, match="time_steps=1"):
        models.build(cfg, 10)
    cfg = vgg.vgg_config(name="vgg7")
    with pytest.raises(ValueError, match="config.model.name"):
        models.build(cfg, 10)
    snn = models.build(vgg.vgg_config(name="vgg5", neuron="lif", decay=0.9, surrogate="linear"), 10)
    assert snn.activation.keywords["decay"] == 0.9
    assert snn.activation.keywords["surrogate"] == surrogates.linear(0.3)
