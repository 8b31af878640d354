"""Membrane-level options that reproduce the official code, each against a NumPy loop written
from that code's recursion: SNN2ANN's membrane dropout and its ResNet residual current (hybrid
conversion's one-step spike delay: tests/methods/hybrid/test_official_recursions.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.methods.snn2ann import layers as s2a_layers
from snnjax.methods.snn2ann import masks as s2a_masks
from snnjax.methods.snn2ann import models as s2a_models

# ---------------------------------------------------------------------------------------------
# SNN2ANN: IF membrane dropout (official module.py IF) and the ResNet residual current.
# ---------------------------------------------------------------------------------------------


def _official_if(currents, vth, masks):
    """Official IF over T steps: mp = I (t = 0) or mem + I; out = mp > Vth; mem = dropout(mp * (1 - out))."""
    mem, outs = None, []
    for t, current in enumerate(currents):
        mp = current if t == 0 else mem + current
        out = np.asarray(mp - vth > 0, np.float64)
        mem = mp * (1 - out) * masks[t]
        outs.append(out)
    return np.stack(outs)


@pytest.mark.parametrize("unroll", [True, False])  # straight-line steps on [:, t] slices, or one lax.scan
def test_membrane_dropout_matches_official_if_loop(unroll):
    rng = np.random.default_rng(4)
    T, rate = 6, 0.5
    currents = rng.uniform(-0.2, 0.8, size=(2, T, 3, 5)).astype(np.float32)  # [B, T, ...]
    vth = rng.uniform(0, 1, size=(3, 5)).astype(np.float32)
    key = jax.random.key(7)
    got = np.asarray(
        s2a_layers.if_neurons_membrane_dropout(
            jnp.asarray(currents), jnp.asarray(vth), rate=rate, key=key, unroll=unroll
        )
    )
    # The random draw is an input of the recursion: the same Bernoulli(keep) masks (packed bits,
    # snnjax.methods.snn2ann.masks, one [B, ...] mask per step), scaled by 1/(1-p) = 2.
    words = s2a_masks.draw_words(key, 1 - rate, T, 2 * 3 * 5)
    keep = np.stack([np.asarray(s2a_masks.unpack_keep(words[t], 1 - rate, (2, 3, 5))) for t in range(T)])
    keep = keep.astype(np.float64) / (1 - rate)
    assert set(np.unique(keep)) == {0.0, 2.0}
    for b in range(2):
        want = _official_if(currents[b].astype(np.float64), vth, keep[:, b])
        np.testing.assert_array_equal(got[b], want)
    # Without dropout (evaluation) it is the plain IF neuron.
    plain = np.asarray(
        s2a_layers.if_neurons_membrane_dropout(
            jnp.asarray(currents), jnp.asarray(vth), rate=rate, key=None, unroll=unroll
        )
    )
    for b in range(2):
        np.testing.assert_array_equal(plain[b], _official_if(currents[b].astype(np.float64), vth, np.ones((T, 1, 1))))
    assert not np.array_equal(got, plain)


@pytest.mark.parametrize("membrane_dropout", [0.5, 0.0])
def test_unrolled_if_neurons_equal_the_scanned_ones(membrane_dropout):
    # MappedIFNeuron.unroll changes only how the T steps are laid out for XLA: the same spikes,
    # ANN outputs and ATA thresholds, bit for bit, with and without membrane dropout.
    rng = np.random.default_rng(6)
    current = jnp.asarray(rng.uniform(-0.2, 0.8, size=(4, 5, 3, 3, 2)).astype(np.float32))  # [B, T, H, W, C]
    preact = jnp.asarray(rng.normal(size=(4, 3, 3, 2)).astype(np.float32))

    def run(unroll):
        neuron = s2a_layers.MappedIFNeuron(membrane_dropout=membrane_dropout, unroll=unroll)
        variables = neuron.init({"params": jax.random.key(0)}, current, preact, train=False)
        return neuron.apply(
            variables, current, preact, train=True, rngs={"dropout": jax.random.key(3)}, mutable=["thresholds"]
        )

    (spikes, ann_out), updates = run(True)
    assert 0 < float(jnp.mean(spikes)) < 1
    jax.tree.map(np.testing.assert_array_equal, ((spikes, ann_out), updates), run(False))


def test_membrane_dropout_only_in_training():
    net = s2a_models.SNN2ANNVGG(s2a_models.parse_layers("1,M", 4), num_classes=3, time_steps=4, membrane_dropout=0.5)
    x = jnp.asarray(np.random.default_rng(5).normal(size=(4, 8, 8, 1)).astype(np.float32))
    variables = net.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x, train=False)
    plain = net.clone(membrane_dropout=0.0)
    np.testing.assert_array_equal(net.apply(variables, x, train=False), plain.apply(variables, x, train=False))
    rngs = {"dropout": jax.random.key(3)}
    a = net.apply(
        variables, x, train=True, ann=True, method="branches", rngs=rngs, mutable=["batch_stats", "thresholds"]
    )
    b = plain.apply(
        variables, x, train=True, ann=True, method="branches", rngs=rngs, mutable=["batch_stats", "thresholds"]
    )
    assert not np.array_equal(np.asarray(a[0].snn_logits), np.asarray(b[0].snn_logits))


def _np_conv_s(x, kernel, bias, stride):
    """'Same'-padded (k-1)//2 convolution with stride, NumPy, [B, H, W, Cin] x [k, k, Cin, Cout]."""
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
    return out + bias


@pytest.mark.parametrize("residual", ["current", "spikes"])
def test_resnet17_snn_branch_matches_official_loop(residual):
    """SNN branch of ResNet-17 (evaluation) against a NumPy loop of the official forward
    (networks.py ResNet / block.py BasicBlock): per step, stem IF, then per block conv1 -> IF ->
    conv2, plus the identity term (the previous block's I_u, the stem current for the first block)
    or the folded 1x1 shortcut current, -> IF; I_u = that block's output current."""
    T = 3
    net = s2a_models.SNN2ANNResNet(num_classes=3, time_steps=T, width=4, residual=residual)
    x = np.random.default_rng(6).normal(size=(2, 8, 8, 3)).astype(np.float32)
    variables = net.init({"params": jax.random.key(0)}, jnp.asarray(x), train=False)
    rng = np.random.default_rng(7)
    # Non-trivial BN statistics and thresholds.
    variables = dict(variables)
    variables["batch_stats"] = jax.tree.map(
        lambda a: jnp.asarray(rng.uniform(0.5, 1.5, a.shape) if a.ndim else a, jnp.float32), variables["batch_stats"]
    )
    variables["thresholds"] = jax.tree.map(
        lambda a: jnp.asarray(rng.uniform(0.1, 0.9, a.shape), jnp.float32), variables["thresholds"]
    )
    got = np.asarray(net.apply(variables, jnp.asarray(x), train=False))

    v = jax.tree.map(lambda a: np.asarray(a, np.float64), variables)
    P, S, V = v["params"], v["batch_stats"], v["thresholds"]

    def folded(path):
        p = P
        s = S
        for part in path.split("/"):
            p, s = p[part], s[part]
        a = p["bn_scale"] / np.sqrt(s["bn_var"] + 1e-5)
        return p["conv_kernel"] * a, (a * (p["conv_bias"] - s["bn_mean"]) + p["bn_bias"]) / T

    def vth(path):
        t = V
        for part in path.split("/"):
            t = t[part]
        return t["vth"]

    mems: dict[str, np.ndarray] = {}

    def IF(name, current, t):
        mp = current if t == 0 else mems[name] + current
        out = np.asarray(mp - vth(name) > 0, np.float64)
        mems[name] = mp * (1 - out)
        return out

    blocks = [(s, b) for s in range(4) for b in range(2)]
    strides = {0: 1, 1: 1, 2: 2, 3: 2}
    summed = 0.0
    for t in range(T):
        w, bias = folded("stem")
        i_u = _np_conv_s(x.astype(np.float64), w, bias, 1)
        spikes = IF("stem_neuron", i_u, t)
        for s, b in blocks:
            name = f"stage{s}_block{b}"
            stride = strides[s] if b == 0 else 1
            w1, b1 = folded(f"{name}/conv_bn1")
            s1 = IF(f"{name}/neuron1", _np_conv_s(spikes, w1, b1, stride), t)
            w2, b2 = folded(f"{name}/conv_bn2")
            c2 = _np_conv_s(s1, w2, b2, 1)
            if "shortcut" in P[name]:
                ws, bs = folded(f"{name}/shortcut")
                iden = _np_conv_s(spikes, ws, bs, stride)
            else:
                iden = i_u if residual == "current" else spikes
            i_u = c2 + iden
            spikes = IF(f"{name}/neuron_out", i_u, t)
        summed = summed + spikes
    rates = (summed / T).reshape(2, -1)
    want = rates @ P["head"]["kernel"] + P["head"]["bias"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
