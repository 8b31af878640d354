"""SNN2ANN networks: one parameter tree read by two branches, checked against an independent NumPy
implementation of the SNN branch (time-step-major loop, as the official code runs it; the library runs
layer by layer); ResNet-17, the BPTT baseline, layer specs and config checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import models
from snnjax.methods import snn2ann
from snnjax.methods.snn2ann import MappedIFNeuron

T = 4
TINY = dict(layers="1,M,2", width=2, time_steps=T, dropout=(0.0,))


# ---------------------------------------------------------------------------------------------
# The network: one parameter tree, two branches; a NumPy reference of the SNN branch
# ---------------------------------------------------------------------------------------------


def _np_conv(x, w, b):
    h, wd = x.shape[1:3]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = sum(np.einsum("nhwc,co->nhwo", xp[:, i : i + h, j : j + wd], w[i, j]) for i in range(3) for j in range(3))
    return out + b


def _np_fold(p, s):
    a = p["bn_scale"] / np.sqrt(s["bn_var"] + 1e-5)
    return p["conv_kernel"] * a, a * (p["conv_bias"] - s["bn_mean"]) + p["bn_bias"]


def _np_maxpool(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _np_snn_logits(variables, x):
    """The official loop order: for t in 0..T-1, every layer advances one step."""
    v = jax.tree.map(lambda a: np.asarray(a, np.float64), variables)
    p, s, th = v["params"], v["batch_stats"], v["thresholds"]
    w0, b0 = _np_fold(p["layer0"], s["layer0"])
    w1, b1 = _np_fold(p["layer1"], s["layer1"])
    mem0 = mem1 = 0.0
    s0 = s1 = None
    total = 0.0
    x = np.asarray(x, np.float64)
    for _ in range(T):
        i0 = _np_maxpool(_np_conv(x, w0, b0 / T))
        mem0 = (mem0 * (1 - s0) if s0 is not None else 0.0) + i0
        s0 = (mem0 > th["layer0_neuron"]["vth"]).astype(np.float64)
        i1 = _np_conv(s0, w1, b1 / T)
        mem1 = (mem1 * (1 - s1) if s1 is not None else 0.0) + i1
        s1 = (mem1 > th["layer1_neuron"]["vth"]).astype(np.float64)
        total = total + s1.reshape(len(x), -1) @ p["head"]["kernel"] + p["head"]["bias"]
    return total / T


def test_snn_branch_matches_a_numpy_time_step_major_reference(tiny):
    model, variables, x, branches = tiny
    snn = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    np.testing.assert_allclose(snn, _np_snn_logits(variables, x), rtol=1e-4, atol=1e-4)
    # In training the SNN branch reads the statistics and thresholds from BEFORE the step's updates.
    out, new = branches(variables, x, True)
    np.testing.assert_allclose(out.snn_logits, snn, rtol=1e-6, atol=1e-6)
    assert not np.allclose(new["batch_stats"]["layer0"]["bn_mean"], variables["batch_stats"]["layer0"]["bn_mean"])


def test_ann_activations_are_the_snn_spike_counts(tiny):
    model, variables, x, _ = tiny
    _, inter = jax.jit(
        lambda v, x: model.apply(
            v,
            x,
            train=True,
            method="branches",
            mutable=["batch_stats", "thresholds", "intermediates"],
            capture_intermediates=lambda mdl, _: isinstance(mdl, MappedIFNeuron),
        )
    )(variables, x)
    for name in ("layer0_neuron", "layer1_neuron"):
        spikes, ann_out = inter["intermediates"][name]["__call__"][0]
        np.testing.assert_array_equal(ann_out, spikes.sum(1))  # STSU: activation == count in 0..T
        assert spikes.shape[1] == T and set(np.unique(spikes)) <= {0.0, 1.0}
        assert 0 < float(spikes.mean()) < 1  # the check is not vacuous


def test_both_branches_read_one_parameter_tree(tiny):
    model, variables, x, branches = tiny
    params = variables["params"]
    assert set(params) == {"layer0", "layer1", "head"}
    for layer in ("layer0", "layer1"):
        assert set(params[layer]) == {"conv_kernel", "conv_bias", "bn_scale", "bn_bias"}
        assert set(variables["batch_stats"][layer]) == {"bn_mean", "bn_var"}
    assert set(variables["thresholds"]) == {"layer0_neuron", "layer1_neuron"}

    # Changing one shared kernel changes both branches' outputs.
    out, _ = branches(variables, x, True)
    bumped = jax.tree.map(lambda a: a, variables)
    bumped["params"]["layer1"]["conv_kernel"] = params["layer1"]["conv_kernel"] + 0.5
    out2, _ = branches(bumped, x, True)
    assert not np.allclose(out.snn_logits, out2.snn_logits)
    assert not np.allclose(out.ann_logits, out2.ann_logits)

    # Gradients: the ANN loss reaches every parameter; the SNN logits give none.
    def branch_loss(p, which):
        out, _ = model.apply(
            {**variables, "params": p},
            x,
            train=True,
            method="branches",
            mutable=["batch_stats", "thresholds"],
            rngs={"dropout": jax.random.key(0)},
        )
        return jnp.sum(getattr(out, which) * jnp.arange(3.0))

    g_ann = jax.jit(jax.grad(lambda p: branch_loss(p, "ann_logits")))(params)
    g_snn = jax.jit(jax.grad(lambda p: branch_loss(p, "snn_logits")))(params)
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(g_ann))
    assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(g_snn))


def test_bptt_baseline_has_the_same_parameter_count_and_no_thresholds():
    cfg = snn2ann.model_config(**TINY)
    x = jnp.zeros((1, 4, 4, 1))
    shapes = [
        jax.eval_shape(lambda: m.init(jax.random.key(0), x, train=False))
        for m in (models.build(cfg, 3), models.build(snn2ann.model_config(name="bptt_vgg", **TINY), 3))
    ]
    counts = [sum(int(np.prod(a.shape)) for a in jax.tree.leaves(s["params"])) for s in shapes]
    # layer0: 3*3*1*2 + 2 + 2 + 2; layer1: 3*3*2*4 + 4 + 4 + 4; head: 2*2*4*3 + 3
    assert counts[0] == counts[1] == 24 + 84 + 51
    assert "thresholds" not in shapes[1]


def test_resnet17_has_17_convs_plus_3_shortcuts_and_runs_both_branches():
    model = models.build(snn2ann.model_config(name="snn2ann_resnet17", width=2, time_steps=2), 3)
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    kernels = [p for p, _ in jax.tree_util.tree_leaves_with_path(shapes["params"]) if p[-1].key == "conv_kernel"]
    three = [p for p in kernels if "shortcut" not in str(p)]
    assert len(three) == 17 and len(kernels) - len(three) == 3
    assert len(jax.tree.leaves(shapes["thresholds"])) == 17  # stem + 2 per block
    assert shapes["params"]["head"]["kernel"].shape == (2 * 2 * 16, 3)  # 8x8 -> 2x2, 8*width channels


@pytest.mark.parametrize(
    "spec,match",
    [("M,1", "must follow a conv"), ("1,M,M", "one pool per conv"), ("1,X", "neither"), ("", "no conv layer")],
)
def test_bad_layer_specs_are_explained(spec, match):
    with pytest.raises(ValueError, match=match):
        snn2ann.parse_layers(spec, 8)


def test_parse_layers_and_bad_config_values():
    assert snn2ann.parse_layers("1,1,M,2,A", 8) == ((8, None), (8, "max"), (16, "avg"))
    with pytest.raises(ValueError, match="mapping_unit"):
        models.build(snn2ann.model_config(mapping_unit="relu"), 10)
    with pytest.raises(ValueError, match="config.model.name='vgg16'.*snn2ann_vgg"):
        snn2ann.models.build(snn2ann.model_config(name="vgg16"), 10)
    with pytest.raises(ValueError, match="bptt_resnet17"):  # the BPTT baseline is a VGG only
        models.build(snn2ann.model_config(name="bptt_resnet17"), 10)
