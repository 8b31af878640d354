"""The hybrid ResNet against a NumPy loop of the official recursion (hybrid-snn-conversion's
``self_models/resnet_spiking.py`` forward and ``snn.py`` threshold search, written out step by step).

Weights, inputs and thresholds are multiples of 1/8 or 1/4 (dyadic), so every current, membrane and
threshold is exact in float32 and float64 and the spike trains can be compared bit for bit (a
float rounding would otherwise flip a spike when a membrane lands exactly on a balanced threshold).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import models
from snnjax.methods.hybrid import conversion, neuron, resnet, vgg

T = 8  # enough steps for the one-step-per-layer delay to reach every layer of resnet6
BLOCKS = resnet.BLOCKS["hybrid_resnet6"]  # stage 0: identity block; stage 1: stride 2 + 1x1 shortcut conv


def _np_conv(x, kernel, stride):
    """'Same' (k-1)//2 zero-padded convolution, [B, H, W, Cin] x [k, k, Cin, Cout], float64."""
    k = kernel.shape[0]
    pad = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h_out = (x.shape[1] + 2 * pad - k) // stride + 1
    w_out = (x.shape[2] + 2 * pad - k) // stride + 1
    out = np.zeros((x.shape[0], h_out, w_out, kernel.shape[-1]))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i : i + stride * h_out : stride, j : j + stride * w_out : stride]
            out += np.einsum("bhwc,cd->bhwd", patch, kernel[i, j])
    return out


def _np_pool(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def official_loop(params, inputs, thresholds, *, probe=None, leak=1.0):
    """The official spiking ResNet over ``T`` steps (evaluation: dropout masks are ones).

    ``inputs``: ``[B, T, H, W, C]`` (the encoded input of each step). Per layer and step, as
    ``resnet_spiking.py``: ``mem_thr = mem / theta - 1`` from the OLD membrane, ``out = mem_thr > 0``,
    ``dt = t - 1 - last_spike`` (what the STDB surrogate sees), ``last_spike = t - 1`` where out fired,
    ``mem = leak * mem + current - theta * out``. A block's second membrane integrates
    ``conv2(out1) + identity(block input)`` (identity: the input itself or a 1x1 conv).

    Returns ``(logits, record)``: logits = sum over t of ``head(out of the last block)``;
    ``record[layer]`` = dict of per-step ``out``, ``mem`` (after the step), ``dt``; with ``probe``,
    ``(max over steps of probe's input current, None)`` (``find_max_mem``).
    """
    p = params
    mem, last = {}, {}
    record = {n: {"out": [], "mem": [], "dt": []} for n in resnet.spiking_layer_names(BLOCKS)}
    logits, max_current = 0.0, 0.0

    def fire(name, current, t):
        nonlocal max_current
        if name == probe:
            max_current = max(max_current, float(current.max()))
            return None
        m = mem.get(name, np.zeros_like(current))
        ls = last.get(name, np.full_like(current, -1000.0))
        mem_thr = m / thresholds[name] - 1.0
        out = (mem_thr > 0).astype(np.float64)
        dt = (t - 1) - ls
        last[name] = np.where(out > 0, t - 1, ls)
        mem[name] = leak * m + current - thresholds[name] * out
        for key, value in (("out", out), ("mem", mem[name]), ("dt", dt)):
            record[name][key].append(value)
        return out

    for t in range(inputs.shape[1]):
        h = inputs[:, t]
        for name in resnet.STEM:
            h = fire(name, _np_conv(h, p[name]["kernel"], 1), t)
            if h is None:
                break
        if h is None:
            continue
        h = _np_pool(h)
        for stage, count in enumerate(BLOCKS):
            for block in range(count):
                prefix = resnet.block_name(stage, block)
                stride = resnet.STAGE_STRIDES[stage] if block == 0 else 1
                inp = h
                out1 = fire(f"{prefix}_conv1", _np_conv(inp, p[f"{prefix}_conv1"]["kernel"], stride), t)
                if out1 is None:
                    break
                shortcut = p.get(f"{prefix}_shortcut")
                identity = inp if shortcut is None else _np_conv(inp, shortcut["kernel"], stride)
                h = fire(f"{prefix}_conv2", _np_conv(out1, p[f"{prefix}_conv2"]["kernel"], 1) + identity, t)
                if h is None:
                    break
            if h is None or out1 is None:
                break
        if h is None or out1 is None:
            continue
        logits = logits + h.reshape(h.shape[0], -1) @ p["head"]["kernel"]
    if probe is not None:
        return max_current, None
    return logits, {n: {k: np.stack(v, axis=0) for k, v in r.items()} for n, r in record.items()}


def _dyadic_setup(encoding, seed=0):
    """A spiking hybrid_resnet6 (width 4, 8x8x1 input) with dyadic weights, and its input."""
    cfg = resnet.resnet_config(
        name="hybrid_resnet6", width=4, time_steps=T, encoding=encoding, spike_delay=True, dense_init="he"
    )
    model = models.build(cfg, num_classes=3)
    rng = np.random.default_rng(seed)
    if encoding == "direct":
        x = rng.integers(0, 9, size=(2, 8, 8, 1)) / 8.0  # pixels k/8
        steps = np.broadcast_to(x[:, None], (2, T, 8, 8, 1))
    else:  # an already encoded signed spike train, as the official PoissonGenerator emits
        x = rng.choice([-1.0, 0.0, 0.0, 1.0, 1.0], size=(2, T, 8, 8, 1))
        steps = x
    init = model.init({"params": jax.random.key(0)}, jnp.asarray(x, jnp.float32), train=False)
    # Weights in {-1, 0, 1, 2} / 4: exact sums, and enough positive drive that every layer fires.
    params = jax.tree.map(lambda a: jnp.asarray(rng.integers(-1, 3, size=a.shape) / 4.0, jnp.float32), init["params"])
    return model, params, np.asarray(x, np.float32), np.asarray(steps, np.float64)


def _thresholds():
    names = resnet.spiking_layer_names(BLOCKS)
    return {n: 0.75 + 0.25 * (i % 4) for i, n in enumerate(names)}


@pytest.mark.parametrize("encoding", ["direct", "poisson"])
def test_spikes_membranes_dt_and_logits_match_the_official_loop(encoding):
    model, params, x, steps = _dyadic_setup(encoding)
    thresholds = _thresholds()
    variables = {"params": params, "thresholds": vgg.thresholds_to_collection(thresholds)}
    want_logits, record = official_loop(jax.tree.map(lambda a: np.asarray(a, np.float64), params), steps, thresholds)

    # The whole run at once: logits = sum over T of head(spikes of the last block).
    got = np.asarray(model.apply(variables, jnp.asarray(x), train=False))
    np.testing.assert_array_equal(got, want_logits)

    # Step by step (one-step chunks handing the neuron state on): per layer the emitted spikes,
    # the membrane after the step, and the dt the STDB surrogate sees.
    one = model.clone(time_steps=1)
    state = None
    since_before = {}  # layer -> since_spike in the state before each recursion step
    is_neuron = lambda mdl, _: isinstance(mdl, neuron.HybridNeuron)  # noqa: E731
    for t in range(T):
        xt = jnp.asarray(x if encoding == "direct" else x[:, t : t + 1])
        v = {**variables, **({"neuron_state": state} if state is not None else {})}
        _, updates = one.apply(
            v, xt, train=False, mutable=["neuron_state", "intermediates"], capture_intermediates=is_neuron
        )
        for name in resnet.spiking_layer_names(BLOCKS):
            emitted = np.asarray(updates["intermediates"][name + "_act"]["__call__"][0])
            np.testing.assert_array_equal(emitted, record[name]["out"][t], err_msg=f"{name} spikes at t={t}")
            s = updates["neuron_state"][name + "_act"]["state"]
            np.testing.assert_array_equal(np.asarray(s.membrane), record[name]["mem"][t], err_msg=f"{name} mem t={t}")
            since_before.setdefault(name, [np.full_like(record[name]["dt"][0], neuron.NEVER_SPIKED)])
            since_before[name].append(np.asarray(s.since_spike))
        state = updates["neuron_state"]
    for name, r in record.items():
        # Official out_t is recursion spike s[t-1], so its dt is the since_spike before recursion step t-1.
        for t in range(1, T):
            np.testing.assert_array_equal(since_before[name][t - 1], r["dt"][t], err_msg=f"{name} dt at t={t}")
        assert r["out"].sum() > 0, f"{name} never fired: the test would not exercise it"


def test_balanced_thresholds_match_the_official_search():
    """``snn.py``'s ``find_threshold`` order (stem, then each block's conv1, conv2) with the block's
    second current ``conv2(out1) + identity(x)``: each layer's max input current, earlier layers at
    their balanced thresholds (leak 1)."""
    model, params, x, _ = _dyadic_setup("direct", seed=1)
    steps_bal = 24  # balanced thresholds fire rarely: deep layers need more steps to receive input
    got = conversion.balance_thresholds(
        model,
        {"params": params},
        [x],
        jax.random.key(0),
        conversion.BalanceSettings(time_steps=steps_bal, scaling_factor=1.0),
    )
    steps = np.broadcast_to(x.astype(np.float64)[:, None], (x.shape[0], steps_bal) + x.shape[1:])
    assert list(got) == list(resnet.spiking_layer_names(BLOCKS))
    p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    want: dict[str, float] = {}
    for name in resnet.spiking_layer_names(BLOCKS):
        want[name], _ = official_loop(p64, steps, want, probe=name)
    assert all(v > 0 for v in want.values())
    assert got == pytest.approx(want, rel=0, abs=0)


def test_stem_mode_is_the_official_resnet_search():
    """The official ResNet branch of ``find_threshold`` balances the three ``pre_process`` convs only;
    every block threshold stays at ``default_threshold`` (1.0) and ``threshold_update`` scales the
    stem thresholds alone."""
    model, params, x, _ = _dyadic_setup("direct", seed=1)
    settings = conversion.BalanceSettings(time_steps=24, scaling_factor=1.0, mode="stem")
    got = conversion.balance_thresholds(model, {"params": params}, [x], jax.random.key(0), settings)
    steps = np.broadcast_to(x.astype(np.float64)[:, None], (x.shape[0], 24) + x.shape[1:])
    p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    want = {name: 1.0 for name in resnet.spiking_layer_names(BLOCKS)}
    for name in resnet.STEM:
        want[name], _ = official_loop(p64, steps, want, probe=name)
    assert got == pytest.approx(want, rel=0, abs=0)
    assert list(got) == list(resnet.spiking_layer_names(BLOCKS))
    scaled = conversion.scale_thresholds(got, 0.5, mode="stem")
    assert scaled == {n: v * 0.5 if n in resnet.STEM else 1.0 for n, v in got.items()}


def test_residual_mode_rescales_each_conv2_by_its_conv1_threshold():
    """Mode ``residual``: every layer balanced; while balancing (and after), a block's ``conv2``
    kernel is multiplied by its ``conv1``'s threshold. NumPy: the official search on weights that are
    rescaled by hand as each ``conv1`` threshold is found."""
    model, params, x, _ = _dyadic_setup("direct", seed=1)
    settings = conversion.BalanceSettings(time_steps=24, scaling_factor=1.0, mode="residual")
    got = conversion.balance_thresholds(model, {"params": params}, [x], jax.random.key(0), settings)
    steps = np.broadcast_to(x.astype(np.float64)[:, None], (x.shape[0], 24) + x.shape[1:])
    p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    want: dict[str, float] = {}
    for name in resnet.spiking_layer_names(BLOCKS):
        want[name], _ = official_loop(p64, steps, want, probe=name)
        if name.endswith("_conv1"):
            conv2 = name.replace("_conv1", "_conv2")
            p64 = {**p64, conv2: {"kernel": p64[conv2]["kernel"] * want[name]}}
    assert all(v > 0 for v in want.values())
    assert got == pytest.approx(want, rel=1e-6)

    variables = conversion.snn_variables({"params": params}, got, mode="residual")
    for name, value in variables["params"].items():
        factor = got[name.replace("_conv2", "_conv1")] if name.endswith("_conv2") else 1.0
        np.testing.assert_allclose(value["kernel"], np.asarray(params[name]["kernel"]) * factor, rtol=1e-6)
    assert conversion.snn_variables({"params": params}, got)["params"] is params  # other modes: as trained


def test_block_modes_refuse_a_vgg():
    cfg = vgg.vgg_config(name="vgg5", width=4, time_steps=2)
    with pytest.raises(ValueError, match="conversion.balance='all' for a VGG"):
        conversion.balanced_layers(models.build(cfg, num_classes=3), "stem")
    with pytest.raises(ValueError, match="mode must be one of"):
        conversion.BalanceSettings(mode="blocks")


def _np_ann_activations(params, x):
    """Post-ReLU activations of every spiking layer of the ANN resnet6 (NumPy, float64)."""
    p, acts = params, {}
    h = x
    for name in resnet.STEM:
        h = acts[name] = np.maximum(_np_conv(h, p[name]["kernel"], 1), 0.0)
    h = _np_pool(h)
    for stage, count in enumerate(BLOCKS):
        for block in range(count):
            prefix = resnet.block_name(stage, block)
            stride = resnet.STAGE_STRIDES[stage] if block == 0 else 1
            a1 = acts[f"{prefix}_conv1"] = np.maximum(_np_conv(h, p[f"{prefix}_conv1"]["kernel"], stride), 0.0)
            shortcut = p.get(f"{prefix}_shortcut")
            identity = h if shortcut is None else _np_conv(h, shortcut["kernel"], stride)
            h = acts[f"{prefix}_conv2"] = np.maximum(_np_conv(a1, p[f"{prefix}_conv2"]["kernel"], 1) + identity, 0.0)
    return acts


@pytest.mark.parametrize("encoding,percentile", [("direct", 100.0), ("poisson", 90.0)])
def test_activation_statistic_thresholds_are_ratios_of_ann_activation_percentiles(encoding, percentile):
    """Statistic ``activations`` (Rueckauer et al. 2017): ``theta_l = lambda_l / lambda_in(l)`` with
    ``lambda`` the percentile of the ANN's post-ReLU activations (NumPy), a block's conv1 and conv2
    both fed by the block input, the input's scale ``1 / poisson_gain`` for Poisson input."""
    model, params, x, _ = _dyadic_setup("direct", seed=1)
    model = model.clone(encoding=encoding)
    settings = conversion.BalanceSettings(percentile=percentile, mode="residual", statistic="activations")
    got = conversion.balance_thresholds(model, {"params": params}, [x[:1], x[1:]], jax.random.key(0), settings)
    acts = _np_ann_activations(jax.tree.map(lambda a: np.asarray(a, np.float64), params), x.astype(np.float64))
    lam = {name: np.percentile(a, percentile) for name, a in acts.items()}
    sources = {
        "stem0": None,
        "stem1": "stem0",
        "stem2": "stem1",
        "stage0_block0_conv1": "stem2",
        "stage0_block0_conv2": "stem2",
        "stage1_block0_conv1": "stage0_block0_conv2",
        "stage1_block0_conv2": "stage0_block0_conv2",
    }
    assert conversion.input_layers(model) == sources
    input_scale = 1.0 / resnet.POISSON_GAIN if encoding == "poisson" else 1.0
    want = {name: lam[name] / (lam[src] if src else input_scale) for name, src in sources.items()}
    assert list(got) == list(sources)
    assert got == pytest.approx(want, rel=1e-5)
    stem_only = conversion.BalanceSettings(percentile=percentile, mode="stem", statistic="activations")
    got_stem = conversion.balance_thresholds(model, {"params": params}, [x], jax.random.key(0), stem_only)
    assert got_stem == pytest.approx({n: want[n] if n in resnet.STEM else 1.0 for n in sources}, rel=1e-5)
