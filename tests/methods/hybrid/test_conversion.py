"""Threshold balancing against hand-computed and NumPy-simulated networks; converted-SNN accuracy vs T."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax import losses
from snnjax.analysis.spikes import collect_stats
from snnjax.data import load_dataset
from snnjax.methods.hybrid import conversion, vgg
from snnjax.methods.hybrid.neuron import HybridNeuron

IF = functools.partial(HybridNeuron)


def _hand_network():
    """One 1-channel conv (centre tap 1) on a 1x2 image, fc0/fc1 with a few non-zero weights."""
    model = vgg.VGG((64,), 3, width=1, activation=IF, time_steps=1)  # 1 channel, hidden 64
    conv = np.zeros((3, 3, 1, 1), np.float32)
    conv[1, 1, 0, 0] = 1.0
    fc0 = np.zeros((2, 64), np.float32)
    fc0[:, 0] = [1.0, 1.0]  # neuron 0 <- pixels a + b
    fc0[:, 1] = [1.0, 0.0]  # neuron 1 <- pixel a
    fc1 = np.zeros((64, 64), np.float32)
    fc1[0, 0] = fc1[1, 0] = 0.7  # fc1 neuron 0 <- 0.7 * (fc0 spikes 0 and 1)
    params = {
        "conv0": {"kernel": conv},
        "fc0": {"kernel": fc0},
        "fc1": {"kernel": fc1},
        "head": {"kernel": np.ones((64, 3), np.float32)},
    }
    return model, {"params": params}, np.array([[[[0.8], [0.5]]]], np.float32)  # [1, 1, 2, 1]


def test_balancing_a_hand_computed_network():
    model, ann, x = _hand_network()
    settings = conversion.BalanceSettings(time_steps=7, scaling_factor=0.7)
    got = conversion.balance_thresholds(model, ann, [x], jax.random.key(0), settings)
    # conv0: currents 0.8 (a) and 0.5 (b) every step -> theta = 0.8. With it, a fires at t = 1..6
    # (u = 0.8 does not exceed theta at t = 0) and b at t = 1, 3, 4, 6.
    # fc0: neuron 0 gets a + b: max 2 (t = 1) -> theta = 2. Then neuron 0 (u = 0,2,3,3,3,2,4) fires at
    # t = 2, 3, 4, 6 and neuron 1 (current 1 from t = 1: u = 0,1,2,3,2,3,2) at t = 3, 5.
    # fc1: 0.7 * (s0 + s1) peaks at t = 3 where both fire -> theta = 1.4.
    np.testing.assert_allclose([got["conv0"], got["fc0"], got["fc1"]], [0.8, 2.0, 1.4], rtol=1e-6)
    assert list(got) == ["conv0", "fc0", "fc1"]
    scaled = conversion.scale_thresholds(got, settings.scaling_factor)
    np.testing.assert_allclose([scaled["conv0"], scaled["fc0"], scaled["fc1"]], [0.56, 1.4, 0.98], rtol=1e-6)
    snn = conversion.snn_variables(ann, scaled)
    assert snn["params"] is ann["params"]  # weights unchanged: a tree copy
    assert vgg.thresholds_from_collection(snn["thresholds"]) == pytest.approx(scaled)


# --- NumPy time-stepped reference (the reference code's loop order: all layers per time step) ------

ARCH = (64, "A", 64)  # width 2: 2 channels per conv, 128 hidden


def _np_conv(x, k):
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    return sum(padded[:, dy : dy + h, dx : dx + w, :] @ k[dy, dx] for dy in range(3) for dx in range(3))


def _np_pool(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _np_balance(p, x, steps, earlier_scale=1.0):
    """Reference balancing; ``earlier_scale != 1`` simulates a WRONG variant (scaled earlier thresholds)."""
    names = ("conv0", "conv1", "fc0", "fc1")
    thr = {}
    for target in names:
        mem = {n: 0.0 for n in names}
        spk = {n: 0.0 for n in names}
        best = -np.inf
        for _ in range(steps):
            h = x
            for name in names:
                if name == "conv1":
                    h = _np_pool(h)
                if name == "fc0":
                    h = h.reshape(h.shape[0], -1)
                cur = _np_conv(h, p[name]["kernel"]) if name.startswith("conv") else h @ p[name]["kernel"]
                if name == target:
                    best = max(best, float(cur.max()))
                    break
                theta = np.float32(thr[name] * earlier_scale)
                mem[name] = mem[name] - theta * spk[name] + cur
                spk[name] = (mem[name] / theta - 1 > 0).astype(np.float32)
                h = spk[name]
        thr[target] = best
    return thr


def _random_net(seed=0):
    model = vgg.VGG(ARCH, 4, width=2, activation=IF, time_steps=1, dense_init="he")
    x = np.asarray(jax.random.uniform(jax.random.key(seed + 1), (8, 4, 4, 1)), np.float32)
    params = jax.jit(functools.partial(model.init, train=False))(jax.random.key(seed), x)["params"]
    return model, jax.tree.map(np.asarray, params), x


def test_balancing_matches_a_numpy_time_stepped_simulation():
    model, params, x = _random_net()
    got = conversion.balance_thresholds(
        model, {"params": params}, [x], jax.random.key(0), conversion.BalanceSettings(time_steps=24)
    )
    want = _np_balance(params, x, 24)
    np.testing.assert_allclose([got[n] for n in want], list(want.values()), rtol=1e-5)
    wrong = _np_balance(params, x, 24, earlier_scale=0.7)  # the test can tell the orders apart
    assert abs(wrong["fc1"] - want["fc1"]) > 1e-3 * want["fc1"]


def test_chunking_batches_and_percentile():
    model, params, x = _random_net(seed=3)
    ann = {"params": params}
    key = jax.random.key(0)
    whole = conversion.balance_thresholds(model, ann, [x], key, conversion.BalanceSettings(time_steps=20))
    chunked = conversion.balance_thresholds(
        model, ann, [x], key, conversion.BalanceSettings(time_steps=20, time_chunk=6)
    )
    assert chunked == pytest.approx(whole, rel=1e-6)  # direct input: chunking is exact
    halves = conversion.balance_thresholds(model, ann, [x[:4], x[4:]], key, conversion.BalanceSettings(time_steps=20))
    assert halves == pytest.approx(whole, rel=1e-6)  # max over batches = max over their union
    pct = conversion.balance_thresholds(
        model, ann, [x], key, conversion.BalanceSettings(time_steps=20, percentile=99.0)
    )
    assert all(pct[n] < whole[n] for n in whole)
    probe = model.clone(probe="conv0", time_steps=20)
    current = jax.jit(functools.partial(probe.apply, train=False))({"params": params}, x)
    np.testing.assert_allclose(pct["conv0"], np.percentile(np.asarray(current), 99.0), rtol=1e-5)


def test_balancing_settings_and_inputs_are_checked():
    with pytest.raises(ValueError, match="percentile"):
        conversion.BalanceSettings(percentile=0.0)
    model, params, x = _random_net()
    with pytest.raises(ValueError, match="at least one"):
        conversion.balance_thresholds(model, {"params": params}, [], jax.random.key(0))
    with pytest.raises(TypeError, match="spiking VGG"):
        conversion.balance_thresholds(vgg.VGG(ARCH, 4, width=2), {"params": params}, [x], jax.random.key(0))
    dead = jax.tree.map(lambda a: -np.abs(a), params)  # no positive current anywhere
    with pytest.raises(ValueError, match="no positive input current"):
        conversion.balance_thresholds(
            model, {"params": dead}, [x], jax.random.key(0), conversion.BalanceSettings(time_steps=4)
        )


def _train_tiny_ann(model, images, labels, steps=300):
    tx = optax.adam(3e-3)
    params = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), images[:2])["params"]
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, i):
        idx = jax.random.randint(jax.random.fold_in(jax.random.key(1), i), (64,), 0, images.shape[0])

        def loss(p):
            return losses.cross_entropy(model.apply({"params": p}, images[idx], train=False), labels[idx])

        grads = jax.grad(loss)(params)
        updates, opt = tx.update(grads, opt)
        return optax.apply_updates(params, updates), opt

    for i in range(steps):
        params, opt = step(params, opt, i)
    return params


def test_converted_accuracy_approaches_the_ann_as_t_grows():
    splits = load_dataset("digits")
    train_x = jnp.asarray(splits.train.images, jnp.float32) / 255.0
    test_x = np.asarray(splits.test.images[:192], np.float32) / 255.0
    test_y = np.asarray(splits.test.labels[:192])
    arch = (64, "A", 128, "A")
    ann_model = vgg.VGG(arch, 10, width=4, dropout=0.0, classifier_dropout=0.0, dense_init="he")
    params = _train_tiny_ann(ann_model, train_x, jnp.asarray(splits.train.labels))
    logits = jax.jit(functools.partial(ann_model.apply, train=False))({"params": params}, test_x)
    ann_acc = float(np.mean(np.argmax(logits, -1) == test_y))
    assert ann_acc > 0.85

    snn_model = ann_model.clone(activation=IF, time_steps=1, encoding="poisson")
    raw = conversion.balance_thresholds(
        snn_model,
        {"params": params},
        [np.asarray(train_x[:128])],
        jax.random.key(0),
        conversion.BalanceSettings(time_steps=48),
    )
    variables = conversion.snn_variables({"params": params}, conversion.scale_thresholds(raw, 0.7))
    acc = conversion.accuracy_over_time(
        snn_model, variables, test_x, test_y, jax.random.key(1), time_steps=(2, 8, 24, 64), batch_size=192
    )
    assert acc[2] < acc[8] < acc[64] + 0.03 and acc[24] <= acc[64] + 0.03, acc  # monotone up to noise
    assert acc[2] < ann_acc - 0.3, acc  # a couple of steps are far too few
    assert acc[64] > ann_acc - 0.05, (acc, ann_acc)


def test_accuracy_over_time_equals_separate_runs():
    # One run reporting several T equals separate runs of T steps (direct input: no randomness).
    model, params, x = _random_net(seed=5)
    raw = conversion.balance_thresholds(
        model, {"params": params}, [x], jax.random.key(0), conversion.BalanceSettings(time_steps=16)
    )
    variables = conversion.snn_variables({"params": params}, conversion.scale_thresholds(raw, 0.5))
    labels = np.arange(8) % 4
    acc = conversion.accuracy_over_time(
        model, variables, x, labels, jax.random.key(0), time_steps=(3, 10), batch_size=8, time_chunk=4
    )
    for t in (3, 10):
        logits = jax.jit(functools.partial(model.clone(time_steps=t).apply, train=False))(variables, x)
        assert acc[t] == float(np.mean(np.argmax(np.asarray(logits), -1) == labels))
        assert np.abs(np.asarray(logits)).sum() > 0  # the SNN is not silent


def test_sweep_spikes_equal_a_count_of_separate_runs():
    # Spikes per image at each T of one chunked, batched sweep equal the spikes that snnjax.analysis
    # counts (its own interceptors, not the sown rates) in separate T-step runs.
    model, params, x = _random_net(seed=7)
    raw = conversion.balance_thresholds(
        model, {"params": params}, [x], jax.random.key(0), conversion.BalanceSettings(time_steps=16)
    )
    variables = conversion.snn_variables({"params": params}, conversion.scale_thresholds(raw, 0.5))
    labels = np.arange(8) % 4
    points = conversion.sweep_over_time(
        model, variables, x, labels, jax.random.key(0), time_steps=(3, 10), batch_size=4, time_chunk=4
    )
    for t in (3, 10):
        report = collect_stats(model.clone(time_steps=t), variables, x, batch_size=8)
        assert report.spikes_per_example > 0
        np.testing.assert_allclose(points[t]["spikes_per_image"], report.spikes_per_example, rtol=1e-5)
    assert points[10]["spikes_per_image"] > points[3]["spikes_per_image"]


def test_activation_statistic_on_a_vgg_chain():
    """Statistic ``activations`` on a VGG: each layer's threshold is its ANN activation percentile
    over the previous layer's (input scale 1: direct input); NumPy forward as the reference."""
    model, params, x = _random_net()
    settings = conversion.BalanceSettings(percentile=99.0, statistic="activations")
    got = conversion.balance_thresholds(model, {"params": params}, [x], jax.random.key(0), settings)
    acts, h = {}, x.astype(np.float64)
    for name in ("conv0", "conv1", "fc0", "fc1"):
        if name == "conv1":
            h = _np_pool(h)
        if name == "fc0":
            h = h.reshape(h.shape[0], -1)
        kernel = np.asarray(params[name]["kernel"], np.float64)
        h = acts[name] = np.maximum(_np_conv(h, kernel) if name.startswith("conv") else h @ kernel, 0.0)
    lam = {n: np.percentile(a, 99.0) for n, a in acts.items()}
    want = {"conv0": lam["conv0"], "conv1": lam["conv1"] / lam["conv0"], "fc0": lam["fc0"] / lam["conv1"]}
    want["fc1"] = lam["fc1"] / lam["fc0"]
    assert conversion.input_layers(model) == {"conv0": None, "conv1": "conv0", "fc0": "conv1", "fc1": "fc0"}
    assert got == pytest.approx(want, rel=1e-5)
