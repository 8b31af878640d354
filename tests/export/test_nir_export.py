"""NIR export: file round trip, parameters, and a NumPy NIR simulator reproducing snnjax's spikes.

The simulator below is a second code path written from NIR's documented equations (forward Euler
with the graph's ``dt``, same-step summed edges, reset to ``v_reset``), in float64 NumPy; it knows
nothing of snnjax. Exact spike equality through a whole ResNet checks the BN folding, the layout
transposes, the LIF/IF mapping, the residual edges, the pooling and the readout at once.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

nir = pytest.importorskip("nir")

from snnjax import layers, models  # noqa: E402
from snnjax.export import write_nir  # noqa: E402
from snnjax.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402

# ------------------------------------------------------------------------------------------ simulator


def _conv2d(x, weight, bias, stride, pad):
    """Cross-correlation, x [B, C_in, H, W], weight [C_out, C_in, kh, kw], symmetric zero padding."""
    b, _, h, w = x.shape
    _, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ho, wo = (h + 2 * pad[0] - kh) // stride[0] + 1, (w + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((b, weight.shape[0], ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + stride[0] * ho : stride[0], j : j + stride[1] * wo : stride[1]]
            out += np.einsum("bchw,oc->bohw", patch, weight[:, :, i, j])
    return out + bias[None, :, None, None]


def _avg_pool(x, kernel, stride):
    b, c, h, w = x.shape
    ho, wo = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
    out = np.zeros((b, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[
                :, :, i * stride[0] : i * stride[0] + kernel[0], j * stride[1] : j * stride[1] + kernel[1]
            ].mean(axis=(2, 3))
    return out


def _topological(graph):
    indegree = {name: 0 for name in graph.nodes}
    for _, dst in graph.edges:
        indegree[dst] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for src, dst in graph.edges:
            if src == name:
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
    assert len(order) == len(graph.nodes), "graph has a cycle"
    return order


def simulate(graph, image, steps):
    """Run ``graph`` for ``steps`` Euler steps on a static ``image`` [B, C, H, W].

    Returns ``(output [B, ...] after the last step, {neuron node: spikes [B, T, ...]})``.
    """
    dt = float(graph.metadata["dt"])
    order = _topological(graph)
    state, spikes = {}, {}
    for _ in range(steps):
        values = {}
        for name in order:
            node = graph.nodes[name]
            inputs = [values[src] for src, dst in graph.edges if dst == name]
            x = sum(inputs) if inputs else None
            if isinstance(node, nir.Input):
                y = image
            elif isinstance(node, nir.Conv2d):
                y = _conv2d(
                    x,
                    node.weight.astype(np.float64),
                    node.bias.astype(np.float64),
                    tuple(node.stride),
                    tuple(node.padding),
                )
            elif isinstance(node, (nir.LIF, nir.IF)):
                v = state.get(name, 0.0)
                if isinstance(node, nir.LIF):
                    v = v + dt / node.tau * (node.v_leak - v + node.r * x)
                else:
                    v = v + dt * node.r * x
                z = v > node.v_threshold
                state[name] = np.where(z, node.v_reset, v)
                y = z.astype(np.float64)
                spikes.setdefault(name, []).append(y)
            elif isinstance(node, nir.AvgPool2d):
                y = _avg_pool(x, tuple(node.kernel_size), tuple(node.stride))
            elif isinstance(node, nir.Flatten):
                y = x.reshape(x.shape[0], -1)
            elif isinstance(node, nir.Affine):
                y = x @ node.weight.T.astype(np.float64) + node.bias
            elif isinstance(node, nir.I):
                state[name] = state.get(name, 0.0) + dt * node.r * x
                y = state[name]
            elif isinstance(node, nir.Output):
                y = x
            else:
                raise AssertionError(f"simulator has no rule for {type(node).__name__} ({name})")
            values[name] = y
    output = values[[n for n in order if isinstance(graph.nodes[n], nir.Output)][0]]
    return output, {k: np.stack(v, axis=1) for k, v in spikes.items()}


# ------------------------------------------------------------------------------------------ models


def _small_resnet(stage_sizes, bottleneck, neuron, T, width, **overrides):
    """A shallow ResNet of the snnjax family (fewer blocks than ResNet18 keep the test fast)."""
    cfg = models.model_config(neuron=neuron, time_steps=T, width=width, **overrides)
    return ResNet(
        stage_sizes=stage_sizes,
        block_cls=Bottleneck if bottleneck else BasicBlock,
        num_classes=5,
        activation=models.make_activation(cfg),
        time_steps=T,
        width=width,
        stem_padding=int(cfg.stem_padding),
        bn_scale_init=float(cfg.v_threshold),
    )


def _trained_like(model=None, seed=0):
    """A tiny SNN with randomised BN statistics/affines (and PLIF decays) so folding is exercised."""
    model = model or models.build_model(models.model_config(name="resnet18", width=4, time_steps=4), 5)
    x = jax.random.normal(jax.random.key(seed + 1), (3, 8, 8, 1)) * 1.5
    # Shapes only (no init compile); every leaf is drawn below.
    variables = jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, train=False))
    rng = np.random.default_rng(seed)

    def perturb(path, leaf):
        key = path[-1].key
        n = leaf.shape
        if key == "kernel":  # He normal over the fan-in
            return jnp.asarray(rng.normal(0.0, math.sqrt(2.0 / math.prod(n[:-1])), n), jnp.float32)
        if key == "scale":
            return jnp.asarray(rng.uniform(0.6, 1.6, n), jnp.float32)
        if key == "bias" and path[0].key != "head":
            return jnp.asarray(rng.uniform(0.0, 0.4, n), jnp.float32)
        if key == "bias":
            return jnp.asarray(rng.normal(0.0, 0.1, n), jnp.float32)
        if key == "mean":
            return jnp.asarray(rng.normal(0.0, 0.2, n), jnp.float32)
        if key == "var":
            return jnp.asarray(rng.uniform(0.5, 2.0, n), jnp.float32)
        if key == "decay_logit":
            return jnp.asarray(rng.normal(0.0, 1.0), jnp.float32)
        raise AssertionError(f"no rule for {path}")

    variables = {k: jax.tree_util.tree_map_with_path(perturb, variables[k]) for k in ("params", "batch_stats")}
    return model, variables, x


def _snnjax_spikes(model, variables, x):
    """Logits and every spiking layer's spikes as [B, T, C, H, W], keyed by NIR node name."""
    logits, inter = jax.jit(
        lambda v, x: model.apply(
            v,
            x,
            train=False,
            capture_intermediates=lambda m, _: isinstance(m, layers.SpikingNeuron),
            mutable=["intermediates"],
        )
    )(variables, x)
    out = {}
    for path, value in jax.tree_util.tree_leaves_with_path(inter["intermediates"]):
        name = ".".join(k.key for k in path[:-2])
        s = np.asarray(value)
        s = s.reshape((x.shape[0], model.time_steps) + s.shape[1:])
        out[name] = s.transpose(0, 1, 4, 2, 3)
    return np.asarray(logits), out


# ------------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def lif_export(tmp_path_factory):
    model, variables, x = _trained_like()
    path = tmp_path_factory.mktemp("nir") / "resnet18.nir"
    write_nir(path, model, variables, input_shape=(8, 8, 1))
    return model, variables, x, nir.read(path)


def test_round_trip_node_types_shapes_edges(lif_export):
    _, _, _, graph = lif_export
    kinds = {}
    for name, node in graph.nodes.items():
        kinds.setdefault(type(node).__name__, []).append(name)
    # ResNet18: stem + 8 blocks x 2 + 3 shortcut convs; stem + 8 x 2 neurons.
    assert len(kinds["Conv2d"]) == 20 and len(kinds["LIF"]) == 17
    assert [len(kinds[k]) for k in ("Input", "AvgPool2d", "Flatten", "Affine", "I", "Output")] == [1] * 6
    assert graph.nodes["input"].output_type["output"].tolist() == [1, 8, 8]
    assert graph.nodes["stage0_block0.act1"].tau.shape == (4, 8, 8)
    assert graph.nodes["stage1_block0.conv1"].output_type["output"].tolist() == [8, 4, 4]
    assert graph.nodes["stage3_block1.act_out"].v_threshold.shape == (32, 1, 1)
    assert graph.nodes["head"].weight.shape == (5, 32)
    into = lambda n: sorted(src for src, dst in graph.edges if dst == n)  # noqa: E731
    # Residual sums are two edges into act_out: identity shortcut and 1x1 conv shortcut.
    assert into("stage0_block1.act_out") == ["stage0_block0.act_out", "stage0_block1.conv2"]
    assert into("stage1_block0.act_out") == ["stage1_block0.conv2", "stage1_block0.shortcut_conv"]
    assert into("stage1_block0.shortcut_conv") == ["stage0_block1.act_out"]
    assert into("pool") == ["stage3_block1.act_out"]
    assert int(graph.metadata["time_steps"]) == 4 and float(graph.metadata["dt"]) == 1.0


def test_parameters_lif_mapping_and_bn_folding(lif_export):
    _, variables, _, graph = lif_export
    lif = graph.nodes["stem_act"]
    # decay 0.25, dt 1: tau = 1 / (1 - 0.25), r = tau; Euler: v <- 0.25 v + I.
    np.testing.assert_allclose(lif.tau, 4 / 3, rtol=1e-6)
    np.testing.assert_allclose(lif.r, 4 / 3, rtol=1e-6)
    np.testing.assert_array_equal(lif.v_threshold, 0.5)
    np.testing.assert_array_equal(lif.v_leak, 0.0)
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    p, s = variables["params"]["stage1_block0"], variables["batch_stats"]["stage1_block0"]
    conv = graph.nodes["stage1_block0.conv1"]
    k = np.asarray(p["conv1"]["kernel"], np.float64)
    gamma, beta = np.asarray(p["bn1"]["scale"]), np.asarray(p["bn1"]["bias"])
    mean, var = np.asarray(s["bn1"]["mean"]), np.asarray(s["bn1"]["var"])
    o, i, h, w = 3, 2, 0, 2  # one element, by hand
    assert conv.weight[o, i, h, w] == pytest.approx(k[h, w, i, o] * gamma[o] / math.sqrt(var[o] + 1e-5), rel=1e-6)
    np.testing.assert_allclose(conv.bias, beta - mean * gamma / np.sqrt(var + 1e-5), rtol=1e-5, atol=1e-7)
    assert tuple(conv.stride) == (2, 2) and tuple(conv.padding) == (1, 1)
    np.testing.assert_allclose(graph.nodes["readout"].r, 1 / 4)


def test_numpy_nir_simulator_reproduces_snnjax_spikes_and_logits(lif_export):
    model, variables, x, graph = lif_export
    logits, expected = _snnjax_spikes(model, variables, x)
    image = np.asarray(x, np.float64).transpose(0, 3, 1, 2)
    out, got = simulate(graph, image, model.time_steps)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    # Not vacuous: spikes reach the last stage, and some neurons stay silent.
    assert expected["stage3_block1.act_out"].sum() > 0
    assert 0.05 < np.mean([e.mean() for e in expected.values()]) < 0.95
    np.testing.assert_allclose(out, logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "bottleneck,neuron,overrides",
    [
        (False, "if", {"stem_padding": 3, "v_threshold": 1.0}),
        (True, "plif", {}),
    ],
)
def test_if_plif_and_bottleneck_variants_reproduce_spikes(tmp_path, bottleneck, neuron, overrides):
    model, variables, x = _trained_like(_small_resnet((2, 1, 1), bottleneck, neuron, 3, 4, **overrides))
    write_nir(tmp_path / "m.nir", model, variables, (8, 8, 1))
    graph = nir.read(tmp_path / "m.nir")
    kinds = [type(node) for node in graph.nodes.values()]
    expected_type, other = (nir.IF, nir.LIF) if neuron == "if" else (nir.LIF, nir.IF)
    assert kinds.count(expected_type) == (1 + 4 * 2 if not bottleneck else 1 + 4 * 3) and other not in kinds
    if neuron == "plif":  # the learned decay of that layer: tau = 1 / (1 - sigmoid(w))
        w = float(variables["params"]["stage1_block0"]["act2"]["decay_logit"])
        np.testing.assert_allclose(graph.nodes["stage1_block0.act2"].tau, 1 + math.exp(w), rtol=1e-5)
    logits, expected = _snnjax_spikes(model, variables, x)
    out, got = simulate(graph, np.asarray(x, np.float64).transpose(0, 3, 1, 2), model.time_steps)
    for n in expected:
        np.testing.assert_array_equal(got[n], expected[n], err_msg=n)
    assert sum(e.sum() for e in expected.values()) > 0
    np.testing.assert_allclose(out, logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "overrides,error,match",
    [
        ({"neuron": "relu", "time_steps": 1}, ValueError, "spiking model"),
        ({"reset": "soft"}, NotImplementedError, "reset='soft'"),
        ({"name": "sew_resnet18"}, NotImplementedError, "SEW"),
    ],
)
def test_unsupported_models_are_refused_with_the_fix(overrides, error, match):
    cfg = models.model_config(width=2, **{"name": "resnet18", **overrides})
    model = models.build_model(cfg, 5)
    variables = jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, jnp.zeros((1, 8, 8, 1)), train=False))
    with pytest.raises(error, match=match):
        write_nir("/nonexistent/never.nir", model, variables, (8, 8, 1))
