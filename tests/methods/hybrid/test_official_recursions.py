"""Membrane-level options that reproduce the official code, each against a NumPy loop written
from that code's recursion: hybrid conversion's one-step spike delay (SNN2ANN's membrane dropout
and its ResNet residual current: tests/methods/snn2ann/test_official_recursions.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import surrogates
from snnjax.methods.hybrid import neuron, vgg

# ---------------------------------------------------------------------------------------------
# Hybrid conversion: spike at step t from the membrane after step t-1 (official vgg_spiking.py).
# ---------------------------------------------------------------------------------------------


def _official_layer_step(mem, last_spike, current, theta, leak, t):
    """One step of one official layer: fire from the OLD membrane, then integrate and reset."""
    mem, last_spike = np.broadcast_to(mem, current.shape), np.broadcast_to(last_spike, current.shape)
    mem_thr = mem / theta - 1.0
    out = np.asarray(mem_thr > 0, np.float64)
    dt = (t - 1) - last_spike  # what the official surrogate sees
    last_spike = np.where(out > 0, t - 1, last_spike)
    mem = leak * mem + current - theta * out
    return out, mem, last_spike, dt


def _official_single_layer(currents, theta, leak):
    mem, last = np.zeros_like(currents[0]), np.full_like(currents[0], -1000.0)
    outs, dts = [], []
    for t, current in enumerate(currents):
        out, mem, last, dt = _official_layer_step(mem, last, current, theta, leak, t)
        outs.append(out)
        dts.append(dt)
    return np.stack(outs), mem, np.stack(dts)


@pytest.mark.parametrize("leak", [1.0, 0.9])
def test_delayed_neuron_matches_official_loop(leak):
    rng = np.random.default_rng(0)
    currents = rng.uniform(-0.5, 1.5, size=(12, 5)).astype(np.float32)  # [T, neurons]
    theta = 0.8
    spikes, final = neuron.if_neurons(jnp.asarray(currents.T)[:, :, None], v_threshold=theta, decay=leak, delay=True)
    ref, ref_mem, _ = _official_single_layer(currents, theta, leak)
    np.testing.assert_array_equal(np.asarray(spikes)[:, :, 0].T, ref)
    assert ref[0].sum() == 0  # nothing can fire at the first step
    # The membranes are the same recursion: the official membrane after the last step is snnjax's
    # (its reset at step t is that of the spike emitted at t, i.e. s[t-1]).
    np.testing.assert_allclose(np.asarray(final.membrane)[:, 0], ref_mem, rtol=1e-5, atol=1e-6)


def test_delayed_stdb_gradient_matches_official_surrogate():
    """d(sum_t w_t out_t)/d(current) with the official STDB surrogate alpha*exp(-beta*dt), dt as the
    official code computes it (t - 1 - last spike time), by hand through the official recursion."""
    rng = np.random.default_rng(1)
    T, theta, leak, alpha, beta = 9, 1.0, 1.0, 0.3, 0.01
    currents = rng.uniform(0.0, 1.2, size=(T,)).astype(np.float32)
    w = rng.normal(size=(T,)).astype(np.float32)
    grad_kind = surrogates.stdb(alpha, beta)

    def loss(c):
        s, _ = neuron.if_neurons(c[None, :, None], v_threshold=theta, decay=leak, surrogate=grad_kind, delay=True)
        return jnp.sum(s[0, :, 0] * w)

    got = np.asarray(jax.grad(loss)(jnp.asarray(currents)))
    # By hand: out_t = H(mem_{t-1}/theta - 1); mem_{t-1} = sum_{k<=t-1} leak^(t-1-k) c_k - resets (no grad);
    # d out_t / d c_k = alpha*exp(-beta*dt_t) / theta * leak^(t-1-k) for k <= t-1.
    _, _, dts = _official_single_layer(currents[:, None], theta, leak)
    want = np.zeros(T)
    for t in range(1, T):
        sg = alpha * np.exp(-beta * dts[t, 0]) / theta
        for k in range(t):
            want[k] += w[t] * sg * leak ** (t - 1 - k)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_delayed_neuron_in_chunks_equals_one_run():
    rng = np.random.default_rng(2)
    currents = jnp.asarray(rng.uniform(0, 1.5, size=(3, 10, 4)).astype(np.float32))
    whole, _ = neuron.if_neurons(currents, v_threshold=0.7, delay=True)
    first, state = neuron.if_neurons(currents[:, :4], v_threshold=0.7, delay=True)
    second, _ = neuron.if_neurons(currents[:, 4:], v_threshold=0.7, delay=True, state=state)
    np.testing.assert_array_equal(np.asarray(whole), np.concatenate([first, second], axis=1))


def _np_conv(x, kernel):
    """3x3 'same' convolution of [B, H, W, Cin] with [3, 3, Cin, Cout] (NumPy, zero padding)."""
    b, h, w_, _ = x.shape
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((b, h, w_, kernel.shape[-1]), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("bhwc,cd->bhwd", pad[:, i : i + h, j : j + w_], kernel[i, j])
    return out


def _np_pool(x):
    b, h, w_, c = x.shape
    return x.reshape(b, h // 2, 2, w_ // 2, 2, c).mean(axis=(2, 4))


def test_delayed_vgg5_logits_match_official_network_loop():
    """The whole spiking VGG5 (direct input, T steps): logits = the official forward's output membrane."""
    model_cfg = vgg.vgg_config(
        name="vgg5", width=4, neuron="if", time_steps=7, encoding="direct", spike_delay=True, dense_init="he"
    )
    model = vgg.build(model_cfg, num_classes=3)
    x = np.random.default_rng(3).uniform(0, 1, size=(2, 8, 8, 1)).astype(np.float32)
    variables = model.init({"params": jax.random.key(0)}, jnp.asarray(x), train=False)
    names = vgg.spiking_layer_names(vgg.ARCHS["vgg5"])
    thresholds = {n: 0.3 + 0.1 * i for i, n in enumerate(names)}
    variables = {"params": variables["params"], "thresholds": vgg.thresholds_to_collection(thresholds)}
    got = np.asarray(model.apply(variables, jnp.asarray(x), train=False))

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    ops = [("conv0", "pool"), ("conv1", None), ("conv2", "pool"), ("fc0", None), ("fc1", None)]
    mem = {n: 0.0 for n in names}
    last = {n: -1000.0 for n in names}
    logits = 0.0
    for t in range(7):
        out_prev = x.astype(np.float64)
        for name, after in ops:
            if name.startswith("fc") and out_prev.ndim == 4:
                out_prev = out_prev.reshape(out_prev.shape[0], -1)
            current = _np_conv(out_prev, p[name]["kernel"]) if name.startswith("conv") else out_prev @ p[name]["kernel"]
            out, mem[name], last[name], _ = _official_layer_step(
                mem[name], last[name], current, thresholds[name], 1.0, t
            )
            out_prev = _np_pool(out) if after == "pool" else out
        logits = logits + out_prev @ p["head"]["kernel"]
    np.testing.assert_allclose(got, logits, rtol=1e-4, atol=1e-5)
