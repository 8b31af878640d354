"""SNN2ANN: mapping units, IF counts, ATA, BN folding, one shared parameter tree, the train step.

Numbers are hand-computed or come from an independent NumPy implementation of the SNN branch
(time-step-major loop, as the official code runs it; the library runs layer by layer).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax import snn2ann
from snnjax.snn2ann import MappedIFNeuron, SharedConvBN
from snnjax.train import steps
from snnjax.train.state import create_train_state

T = 4


# ---------------------------------------------------------------------------------------------
# Spiking mapping units
# ---------------------------------------------------------------------------------------------

RELU = jnp.array([0.0, 0.3, 1.2, 0.0, 2.5])
COUNT = jnp.array([2.0, 0.0, 3.0, 0.0, 1.0])


def test_stsu_forwards_the_spike_count_and_resu_gates_it_by_the_relu():
    np.testing.assert_array_equal(snn2ann.stsu(RELU, COUNT), [2.0, 0.0, 3.0, 0.0, 1.0])
    np.testing.assert_array_equal(snn2ann.resu(RELU, COUNT), [0.0, 0.0, 3.0, 0.0, 1.0])


@pytest.mark.parametrize("unit", [snn2ann.stsu, snn2ann.resu])
def test_mapping_units_are_straight_through_to_the_relu_output(unit):
    w = jnp.array([1.0, -2.0, 3.0, 0.5, 4.0])
    g_relu, g_count = jax.grad(lambda r, c: jnp.sum(w * unit(r, c)), argnums=(0, 1))(RELU, COUNT)
    np.testing.assert_array_equal(g_relu, w)             # identity, also where the forward value is 0
    np.testing.assert_array_equal(g_count, np.zeros(5))  # nothing flows into the SNN
    # Through the ReLU: d/dx = w * 1[x > 0].
    x = jnp.array([-1.0, 0.3, 1.2, -0.2, 2.5])
    g_x = jax.grad(lambda x: jnp.sum(w * unit(nn.relu(x), COUNT)))(x)
    np.testing.assert_array_equal(g_x, [0.0, -2.0, 3.0, 0.0, 4.0])


def test_mapping_unit_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        snn2ann.stsu(RELU, COUNT[:4])


# ---------------------------------------------------------------------------------------------
# IF neuron with per-neuron thresholds, and the ANN activation it maps to
# ---------------------------------------------------------------------------------------------

def _if_count_by_hand(current: float, v: float, steps: int) -> int:
    """Hard reset to 0, spike when mem > v: with constant I > 0 the neuron fires every k steps,
    k = the smallest k with k*I > v = floor(v/I) + 1, so count = floor(T / k) (<= floor(T*I/v))."""
    return 0 if current <= 0 else steps // (int(np.floor(v / current)) + 1)


CASES = [  # (constant current I, threshold v, expected count over T=4 or 6, see the docstring)
    (0.3, 0.5, 2), (0.4, 0.5, 2), (0.5, 0.5, 2), (0.6, 0.5, 4), (0.2, 0.5, 1), (0.0, 0.5, 0), (-1.0, 0.1, 0),
    (0.26, 0.75, 1), (1.0, 0.3, 4),
]


def test_if_neuron_spike_counts_for_constant_input_match_hand_values():
    currents = jnp.array([c for c, _, _ in CASES], jnp.float32)
    vth = jnp.array([v for _, v, _ in CASES], jnp.float32)
    expected = np.array([n for _, _, n in CASES], np.float32)
    assert [_if_count_by_hand(c, v, T) for c, v, _ in CASES] == list(expected)
    current = jnp.broadcast_to(currents, (2, T, len(CASES)))       # [B, T, neurons]
    preact = jnp.stack([currents * T, -jnp.ones_like(currents)])   # example 1: the ANN is silent
    for unit in ("stsu", "resu"):
        neuron = MappedIFNeuron(mapping_unit=unit)
        (spikes, ann_out) = neuron.apply({"thresholds": {"vth": vth}}, current, preact, train=False)
        np.testing.assert_array_equal(spikes.sum(1)[0], expected)
        np.testing.assert_array_equal(spikes.sum(1)[1], expected)
        # STSU: the ANN activation IS the count; ReSU: the count where ReLU(preact) > 0, else 0.
        np.testing.assert_array_equal(ann_out[0], expected * (1 if unit == "stsu" else (currents > 0)))
        np.testing.assert_array_equal(ann_out[1], expected if unit == "stsu" else np.zeros_like(expected))


def test_if_hard_reset_spike_train_by_hand():
    # I = 0.3, v = 0.5: mem 0.3, 0.6 -> spike, reset 0 -> 0.3, 0.6 -> spike.
    neuron = MappedIFNeuron()
    spikes, _ = neuron.apply({"thresholds": {"vth": jnp.array([0.5])}}, jnp.full((1, T, 1), 0.3), None, train=False)
    np.testing.assert_array_equal(spikes[0, :, 0], [0, 1, 0, 1])


def test_thresholds_are_uniform_in_unit_interval_and_not_params():
    x = jnp.zeros((2, 8, 8, 3))
    model = snn2ann.build_model(snn2ann.model_config(layers="2,M", width=4, dropout=(0.0,)), 10)
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
    vth = variables["thresholds"]["layer0_neuron"]["vth"]
    assert vth.shape == (4, 4, 8)                                   # [H, W, C] after the pool
    assert 0.0 <= float(vth.min()) and float(vth.max()) < 1.0 and 0.35 < float(vth.mean()) < 0.65
    assert "layer0_neuron" not in variables["params"]


# ---------------------------------------------------------------------------------------------
# ATA
# ---------------------------------------------------------------------------------------------

def test_noisy_spike_ratio_and_ata_raise_only_above_tolerance():
    relu = jnp.array([0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.5, 0.0, 0.0, 3.0])
    two_noisy = jnp.array([1.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0])   # entries 0, 1: 2/10 noisy
    one_noisy = jnp.array([0.0, 3.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0])   # entry 1: 1/10
    assert float(snn2ann.noisy_spike_ratio(relu, two_noisy)) == pytest.approx(0.2)
    assert float(snn2ann.noisy_spike_ratio(relu, one_noisy)) == pytest.approx(0.1)
    vth = jnp.array([0.2, 0.7])
    # r = 0.2 > 0.1: Vth <- 0.9 Vth + 0.1 (Vth + 0.1) = Vth + 0.01
    np.testing.assert_allclose(snn2ann.ata_update(vth, jnp.float32(0.2)), [0.21, 0.71], rtol=1e-6)
    # r = 0.1 is not > 0.1: unchanged
    np.testing.assert_array_equal(snn2ann.ata_update(vth, jnp.float32(0.1)), vth)
    custom = snn2ann.AtaConfig(tolerance=0.05, step=1.0, momentum=0.5)
    np.testing.assert_allclose(snn2ann.ata_update(vth, jnp.float32(0.1), custom), [0.7, 1.2], rtol=1e-6)


def test_ata_config_rejects_lowering_thresholds():
    with pytest.raises(ValueError, match="ata_step"):
        snn2ann.AtaConfig(step=-0.1)


def test_neuron_applies_ata_in_training_only_when_thresholds_are_mutable():
    vth = jnp.array([0.5, 0.5])
    current = jnp.broadcast_to(jnp.array([0.6, 0.6]), (1, T, 2))    # both fire every step
    preact = jnp.array([[-1.0, 1.0]])                               # neuron 0 is noisy: r = 1/2
    neuron = MappedIFNeuron()
    _, new = neuron.apply({"thresholds": {"vth": vth}}, current, preact, train=True, mutable=["thresholds"])
    np.testing.assert_allclose(new["thresholds"]["vth"], [0.51, 0.51], rtol=1e-6)
    _, new = neuron.apply({"thresholds": {"vth": vth}}, current, preact, train=False, mutable=["thresholds"])
    np.testing.assert_array_equal(new["thresholds"]["vth"], vth)
    quiet = jnp.array([[1.0, 1.0]])                                  # no noisy spike: r = 0
    _, new = neuron.apply({"thresholds": {"vth": vth}}, current, quiet, train=True, mutable=["thresholds"])
    np.testing.assert_array_equal(new["thresholds"]["vth"], vth)
    off = MappedIFNeuron(adapt_threshold=False)
    _, new = off.apply({"thresholds": {"vth": vth}}, current, preact, train=True, mutable=["thresholds"])
    np.testing.assert_array_equal(new["thresholds"]["vth"], vth)


# ---------------------------------------------------------------------------------------------
# BN folding and the shared conv + BN layer
# ---------------------------------------------------------------------------------------------

def _random_layer_variables(key, cin, cout):
    k = jax.random.split(key, 6)
    return {"params": {"conv_kernel": jax.random.normal(k[0], (3, 3, cin, cout)),
                       "conv_bias": jax.random.normal(k[1], (cout,)),
                       "bn_scale": jax.random.uniform(k[2], (cout,), minval=0.5, maxval=2.0),
                       "bn_bias": jax.random.normal(k[3], (cout,))},
            "batch_stats": {"bn_mean": jax.random.normal(k[4], (cout,)),
                            "bn_var": jax.random.uniform(k[5], (cout,), minval=0.5, maxval=3.0)}}


def test_bn_folding_equals_flax_conv_then_batchnorm_in_inference_mode():
    v = _random_layer_variables(jax.random.key(3), 2, 3)
    x = jax.random.normal(jax.random.key(4), (2, 5, 5, 2))
    p, s = v["params"], v["batch_stats"]
    conv = nn.Conv(3, (3, 3), padding=((1, 1), (1, 1)))
    bn = nn.BatchNorm(use_running_average=True, epsilon=1e-5)
    ref = bn.apply({"params": {"scale": p["bn_scale"], "bias": p["bn_bias"]},
                    "batch_stats": {"mean": s["bn_mean"], "var": s["bn_var"]}},
                   conv.apply({"params": {"kernel": p["conv_kernel"], "bias": p["conv_bias"]}}, x))
    w, b = snn2ann.fold_batch_norm(p["conv_kernel"], p["conv_bias"], p["bn_scale"], p["bn_bias"], s["bn_mean"],
                                   s["bn_var"])
    folded = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                          dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
    np.testing.assert_allclose(folded, ref, rtol=1e-5, atol=1e-5)


def test_snn_current_summed_over_time_equals_ann_preactivation_in_inference():
    v = _random_layer_variables(jax.random.key(5), 2, 3)
    spikes = (jax.random.uniform(jax.random.key(6), (2, T, 5, 5, 2)) < 0.4).astype(jnp.float32)
    layer = SharedConvBN(3)
    current, preact = layer.apply(v, spikes, spikes.sum(1), time_steps=T, train=False)
    assert current.shape == (2, T, 5, 5, 3)
    # The bias is split over T, so sum_t (W' s_t + b'/T) = W' count + b' = BN_eval(conv(count)).
    np.testing.assert_allclose(current.sum(1), preact, rtol=1e-4, atol=1e-4)


def test_ann_batchnorm_uses_batch_statistics_and_updates_running_ones_in_training():
    v = _random_layer_variables(jax.random.key(7), 2, 3)
    x = jax.random.normal(jax.random.key(8), (4, 5, 5, 2))
    (_, preact), new = SharedConvBN(3).apply(v, x, x, time_steps=T, train=True, mutable=["batch_stats"])
    y = jax.lax.conv_general_dilated(x, v["params"]["conv_kernel"], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + v["params"]["conv_bias"]
    mean, var = np.asarray(y).mean((0, 1, 2)), np.asarray(y).var((0, 1, 2))
    ref = (np.asarray(y) - mean) / np.sqrt(var + 1e-5) * v["params"]["bn_scale"] + v["params"]["bn_bias"]
    np.testing.assert_allclose(preact, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(new["batch_stats"]["bn_mean"], 0.9 * v["batch_stats"]["bn_mean"] + 0.1 * mean,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["batch_stats"]["bn_var"], 0.9 * v["batch_stats"]["bn_var"] + 0.1 * var,
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The network: one parameter tree, two branches; a NumPy reference of the SNN branch
# ---------------------------------------------------------------------------------------------

TINY = dict(layers="1,M,2", width=2, time_steps=T, dropout=(0.0,))


@pytest.fixture(scope="module")
def tiny():
    # No membrane dropout here: these tests compare the SNN branch in training with evaluation
    # (the official membrane dropout is tested in test_official_recursions.py).
    model = snn2ann.build_model(snn2ann.model_config(mapping_unit="stsu", membrane_dropout=0.0, **TINY), 3)
    x = jax.random.normal(jax.random.key(1), (5, 4, 4, 1))
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
    variables = {k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}
    # Non-trivial BN running statistics so that the folding matters.
    key = iter(jax.random.split(jax.random.key(9), 8))
    variables["batch_stats"] = jax.tree.map(
        lambda s: jax.random.uniform(next(key), s.shape, minval=0.2, maxval=1.5), variables["batch_stats"])
    branches = jax.jit(lambda v, x, train: model.apply(v, x, train=train, method="branches",
                                                        mutable=["batch_stats", "thresholds"],
                                                        rngs={"dropout": jax.random.key(0)}),
                       static_argnums=2)
    return model, variables, x, branches


def _np_conv(x, w, b):
    h, wd = x.shape[1:3]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = sum(np.einsum("nhwc,co->nhwo", xp[:, i:i + h, j:j + wd], w[i, j]) for i in range(3) for j in range(3))
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
    _, inter = jax.jit(lambda v, x: model.apply(
        v, x, train=True, method="branches", mutable=["batch_stats", "thresholds", "intermediates"],
        capture_intermediates=lambda mdl, _: isinstance(mdl, MappedIFNeuron)))(variables, x)
    for name in ("layer0_neuron", "layer1_neuron"):
        spikes, ann_out = inter["intermediates"][name]["__call__"][0]
        np.testing.assert_array_equal(ann_out, spikes.sum(1))          # STSU: activation == count in 0..T
        assert spikes.shape[1] == T and set(np.unique(spikes)) <= {0.0, 1.0}
        assert 0 < float(spikes.mean()) < 1                            # the check is not vacuous


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
        out, _ = model.apply({**variables, "params": p}, x, train=True, method="branches",
                             mutable=["batch_stats", "thresholds"], rngs={"dropout": jax.random.key(0)})
        return jnp.sum(getattr(out, which) * jnp.arange(3.0))

    g_ann = jax.jit(jax.grad(lambda p: branch_loss(p, "ann_logits")))(params)
    g_snn = jax.jit(jax.grad(lambda p: branch_loss(p, "snn_logits")))(params)
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(g_ann))
    assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(g_snn))


def test_bptt_baseline_has_the_same_parameter_count_and_no_thresholds():
    cfg = snn2ann.model_config(**TINY)
    x = jnp.zeros((1, 4, 4, 1))
    shapes = [jax.eval_shape(lambda: m.init(jax.random.key(0), x, train=False))
              for m in (snn2ann.build_model(cfg, 3), snn2ann.build_model(cfg, 3, bptt=True))]
    counts = [sum(int(np.prod(a.shape)) for a in jax.tree.leaves(s["params"])) for s in shapes]
    # layer0: 3*3*1*2 + 2 + 2 + 2; layer1: 3*3*2*4 + 4 + 4 + 4; head: 2*2*4*3 + 3
    assert counts[0] == counts[1] == 24 + 84 + 51
    assert "thresholds" not in shapes[1]


def test_resnet17_has_17_convs_plus_3_shortcuts_and_runs_both_branches():
    model = snn2ann.build_model(snn2ann.model_config(arch="resnet17", width=2, time_steps=2), 3)
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    kernels = [p for p, _ in jax.tree_util.tree_leaves_with_path(shapes["params"]) if p[-1].key == "conv_kernel"]
    three = [p for p in kernels if "shortcut" not in str(p)]
    assert len(three) == 17 and len(kernels) - len(three) == 3
    assert len(jax.tree.leaves(shapes["thresholds"])) == 17      # stem + 2 per block
    assert shapes["params"]["head"]["kernel"].shape == (2 * 2 * 16, 3)   # 8x8 -> 2x2, 8*width channels


# ---------------------------------------------------------------------------------------------
# The train step
# ---------------------------------------------------------------------------------------------

def test_train_step_trains_the_ann_and_applies_ata_per_layer(tiny):
    model, variables, x, _ = tiny
    y = jnp.array([0, 1, 2, 0, 1])
    tx = optax.adam(1e-2)
    # Layer 0 made noisy: a very negative running mean lifts the SNN's folded current (it fires
    # almost everywhere) while a negative BN offset silences most of the ANN (batch statistics).
    stats = jax.tree.map(lambda a: a, variables["batch_stats"])
    stats["layer0"]["bn_mean"] = jnp.full_like(stats["layer0"]["bn_mean"], -5.0)
    variables = jax.tree.map(lambda a: a, variables)
    variables["params"]["layer0"]["bn_bias"] = jnp.full_like(variables["params"]["layer0"]["bn_bias"], -2.0)
    state = create_train_state({**variables, "batch_stats": stats}, tx, jax.random.key(2))
    step = jax.jit(snn2ann.make_train_step(model, tx))
    stats_fn = jax.jit(lambda v, x: model.apply(
        v, x, train=True, method="branches", rngs={"dropout": jax.random.key(0)},
        mutable=["batch_stats", "thresholds", "spike_stats"])[1]["spike_stats"])
    losses, raised_any, kept_any = [], False, False
    for _ in range(12):
        ratios = stats_fn(state.variables, x)
        old = state.model_state["thresholds"]
        state, metrics = step(state, (x, y))
        losses.append(float(metrics["loss"]))
        for name in ("layer0_neuron", "layer1_neuron"):
            delta = np.asarray(state.model_state["thresholds"][name]["vth"] - old[name]["vth"])
            raised = np.float32(ratios[name]["noisy_ratio"][0]) > np.float32(0.1)   # as the step compares
            np.testing.assert_allclose(delta, 0.01 if raised else 0.0, atol=1e-6)
            raised_any, kept_any = raised_any or raised, kept_any or not raised
    assert raised_any and kept_any, "the example should exercise both ATA outcomes"
    assert set(metrics) >= {"loss", "accuracy", "snn_accuracy", "noisy_ratio", "threshold_mean", "grad_norm"}
    assert losses[-1] < losses[0]
    assert int(state.step) == 12


def test_train_step_rejects_a_teacher_and_models_without_branches():
    model = snn2ann.build_model(snn2ann.model_config(**TINY), 3)
    with pytest.raises(ValueError, match="kd.enabled"):
        snn2ann.make_train_step(model, optax.sgd(0.1), distillation=steps.Distillation(model))
    with pytest.raises(TypeError, match="branches"):
        snn2ann.make_train_step(nn.Dense(3), optax.sgd(0.1))


@pytest.mark.parametrize("spec,match", [("M,1", "must follow a conv"), ("1,M,M", "one pool per conv"),
                                        ("1,X", "neither"), ("", "no conv layer")])
def test_bad_layer_specs_are_explained(spec, match):
    with pytest.raises(ValueError, match=match):
        snn2ann.parse_layers(spec, 8)


def test_parse_layers_and_bad_config_values():
    assert snn2ann.parse_layers("1,1,M,2,A", 8) == ((8, None), (8, "max"), (16, "avg"))
    with pytest.raises(ValueError, match="mapping_unit"):
        snn2ann.build_model(snn2ann.model_config(mapping_unit="relu"), 10)
    with pytest.raises(ValueError, match="config.model.arch"):
        snn2ann.build_model(snn2ann.model_config(arch="vgg16"), 10)
    with pytest.raises(ValueError, match="arch='vgg'"):
        snn2ann.build_model(snn2ann.model_config(arch="resnet17"), 10, bptt=True)
