"""The hybrid ResNet family: registry, layout, ANN forward, Poisson gain, config checks, presets, export."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from snnjax import config as config_lib
from snnjax import models
from snnjax.methods.hybrid import config as hybrid_config
from snnjax.methods.hybrid import resnet, vgg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _params(model, shape=(1, 32, 32, 3)):
    x = jnp.zeros(shape, jnp.float32)
    return jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, train=False))


@pytest.mark.parametrize("name", resnet.NAMES)
def test_registry_builds_every_depth_with_the_official_layout(name):
    snn = models.build(resnet.resnet_config(name=name, width=64, neuron="if", time_steps=2), 10)
    ann = models.build(models.ann_model_config(resnet.resnet_config(name=name, width=64)), 10)
    assert isinstance(snn, resnet.HybridResNet) and isinstance(ann, resnet.HybridResNet)
    variables = _params(snn)
    params = variables["params"]
    # ANN and SNN share one parameter tree (conversion is a copy); the SNN adds one threshold per conv.
    assert jax.tree.structure(_params(ann)["params"]) == jax.tree.structure(params)
    assert sorted(variables["thresholds"]) == sorted(
        n + "_act" for n in resnet.spiking_layer_names(resnet.BLOCKS[name])
    )
    blocks = resnet.BLOCKS[name]
    assert len(variables["thresholds"]) == 3 + 2 * sum(blocks)
    # Bias-free everywhere, a 1x1 shortcut conv exactly where a stage starts with stride 2.
    assert all(set(p) == {"kernel"} for p in params.values())
    shortcuts = sorted(k for k in params if k.endswith("_shortcut"))
    assert shortcuts == [f"stage{s}_block0_shortcut" for s in range(1, 4) if blocks[s]]
    assert params["stem0"]["kernel"].shape == (3, 3, 3, 64)
    # The classifier sees the flattened 2x2 map of the last stage (no average pool): 512 * 2 * 2 on 32x32.
    last = max(s for s in range(4) if blocks[s])
    if last == 3:
        assert params["head"]["kernel"].shape == (512 * 2 * 2, 10)


def test_parameter_count_of_resnet20_and_28x28_inputs():
    model = models.build(
        resnet.resnet_config(name="hybrid_resnet20", width=64, neuron="relu", time_steps=1, encoding="direct"), 10
    )
    params = _params(model)["params"]
    # By hand: stem 3*9*3*64 ... counted per conv (3x3 kernels, 1x1 shortcuts), head 2048*10.
    want = 9 * 3 * 64 + 2 * 9 * 64 * 64  # stem
    want += 4 * 9 * 64 * 64  # stage 0: 2 identity blocks
    for cin, c in ((64, 128), (128, 256), (256, 512)):
        want += 9 * cin * c + 9 * c * c + cin * c + 2 * 9 * c * c  # block0 (with shortcut) + block1
    want += 2048 * 10
    assert sum(p.size for p in jax.tree.leaves(params)) == want
    # 28x28 (Fashion-MNIST): 28 -> 14 (pool) -> 14 -> 7 -> 4 -> 2: the same 2x2 head input.
    assert _params(model, (1, 28, 28, 1))["params"]["head"]["kernel"].shape == (2048, 10)


def _np_conv(x, kernel, stride):
    k = kernel.shape[0]
    pad = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h_out = (x.shape[1] + 2 * pad - k) // stride + 1
    w_out = (x.shape[2] + 2 * pad - k) // stride + 1
    out = np.zeros((x.shape[0], h_out, w_out, kernel.shape[-1]))
    for i in range(k):
        for j in range(k):
            out += np.einsum(
                "bhwc,cd->bhwd", xp[:, i : i + stride * h_out : stride, j : j + stride * w_out : stride], kernel[i, j]
            )
    return out


def test_ann_forward_matches_numpy():
    """resnet.py's ANN: relu stem x3 -> pool -> blocks relu(conv2(relu(conv1 x)) + shortcut(x)) -> linear."""
    model = models.build(
        resnet.resnet_config(
            name="hybrid_resnet12", width=4, neuron="relu", time_steps=1, encoding="direct", dense_init="he"
        ),
        3,
    )
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype(np.float32)
    variables = model.init({"params": jax.random.key(1)}, jnp.asarray(x), train=False)
    got = np.asarray(model.apply(variables, jnp.asarray(x), train=False))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    h = x.astype(np.float64)
    for name in resnet.STEM:
        h = relu(_np_conv(h, p[name]["kernel"], 1))
    b, hh, ww, c = h.shape
    h = h.reshape(b, hh // 2, 2, ww // 2, 2, c).mean(axis=(2, 4))
    for stage in range(4):
        stride = resnet.STAGE_STRIDES[stage]
        pre = f"stage{stage}_block0"
        y = _np_conv(relu(_np_conv(h, p[f"{pre}_conv1"]["kernel"], stride)), p[f"{pre}_conv2"]["kernel"], 1)
        short = _np_conv(h, p[f"{pre}_shortcut"]["kernel"], stride) if f"{pre}_shortcut" in p else h
        h = relu(y + short)
    want = h.reshape(2, -1) @ p["head"]["kernel"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_poisson_input_fires_with_the_official_gain():
    """resnet_spiking.py's PoissonGenerator: 1[u <= 0.9 |x|] * sign(x). Probed through a delta-kernel stem0."""
    steps = 400
    model = models.build(resnet.resnet_config(name="hybrid_resnet6", width=1, time_steps=steps), 2).clone(probe="stem0")
    x = jnp.asarray(np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 4, 4, 1))
    variables = model.init({"params": jax.random.key(0), "encoding": jax.random.key(1)}, x, train=False)
    delta = np.zeros((3, 3, 1, 1), np.float32)
    delta[1, 1] = 1.0
    variables = {"params": {**variables["params"], "stem0": {"kernel": jnp.asarray(delta)}}}
    current = np.asarray(model.apply(variables, x, train=False, rngs={"encoding": jax.random.key(2)}))
    assert current.shape == (1, steps, 4, 4, 1) and set(np.unique(current)) <= {-1.0, 0.0, 1.0}
    rate = current.mean(axis=1)[0, ..., 0]
    np.testing.assert_allclose(rate, 0.9 * np.asarray(x)[0, ..., 0], atol=0.07)  # 400 draws: sd <= 0.025


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"config.model.name='hybrid_resnet18' is not valid"):
        models.build(resnet.resnet_config(name="hybrid_resnet18"), 10)
    with pytest.raises(ValueError, match=r"config.model.poisson_gain=1.5"):
        models.build(resnet.resnet_config(poisson_gain=1.5), 10)
    cfg = vgg.vgg_config(name="hybrid_resnet20")  # a VGG section (no poisson_gain) with a ResNet name
    with pytest.raises(ValueError, match=r"lacks the hybrid ResNet keys \['poisson_gain'\]"):
        models.build(cfg, 10)
    with pytest.raises(ValueError, match="probe='fc0' is not a layer of this ResNet"):
        model = models.build(resnet.resnet_config(time_steps=1, width=4), 3).clone(probe="fc0")
        model.init({"params": jax.random.key(0), "encoding": jax.random.key(0)}, jnp.zeros((1, 8, 8, 1)), train=False)


def _config(arg):
    spec = importlib.util.spec_from_file_location("hybrid_cfg", os.path.join(ROOT, "configs", "hybrid_stdb.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


@pytest.mark.parametrize(
    "arg, name, width",
    [
        ("cifar10,resnet20", "hybrid_resnet20", 64),
        ("cifar100,resnet20", "hybrid_resnet20", 64),
        ("cifar10,resnet34", "hybrid_resnet34", 64),
        ("fashion_mnist,resnet20", "hybrid_resnet20", 8),
        ("digits,resnet12", "hybrid_resnet12", 16),
    ],
)
def test_resnet_presets_validate_and_keep_the_official_snn_settings(arg, name, width):
    cfg = _config(arg)
    config_lib.validate(cfg)
    assert (cfg.model.name, cfg.model.width) == (name, width)
    assert cfg.model.poisson_gain == 0.9 and cfg.model.surrogate == "stdb" and cfg.model.neuron == "if"
    ann = hybrid_config.ann_config(cfg).model
    assert (ann.name, ann.neuron, ann.time_steps, ann.encoding) == (name, "relu", 1, "direct")
    if arg.startswith("cifar"):
        assert cfg.model.spike_delay and cfg.model.dropout == 0.3 and ann.dropout == 0.2
        assert cfg.data.name == arg.split(",")[0]
    # Official snn.py balances the ResNet stem only (spike statistic); the 2-core Fashion-MNIST preset
    # uses the ANN-activation thresholds with the residual rescale (docs/hybrid_stdb.md says why).
    conversion = (cfg.conversion.balance, cfg.conversion.statistic)
    assert conversion == (("residual", "activations") if arg.startswith("fashion") else ("stem", "spikes"))


def test_a_bn_resnet_name_in_a_hybrid_section_is_refused():
    cfg = ml_collections.ConfigDict(_config("digits,resnet20").to_dict())
    cfg.model.name = "resnet20"  # the BN Spiking ResNet's name, not the hybrid family's
    with pytest.raises(ValueError, match="config.model"):
        config_lib.validate(cfg)


def test_nir_export_refuses_the_hybrid_family_with_the_reason():
    from snnjax.export import write_nir

    model = models.build(resnet.resnet_config(name="hybrid_resnet6", width=4, time_steps=2), 3)
    with pytest.raises(TypeError, match="reset by subtraction"):
        write_nir("/nonexistent/model.nir", model, {"params": {}}, input_shape=(8, 8, 1))
