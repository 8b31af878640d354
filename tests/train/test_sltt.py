"""SLTT (snnjax.train.sltt): gradients against references written from the paper's equations.

* a NumPy reference: a conv -> LIF -> dense -> LIF -> dense readout network stepped through time by
  hand, its weight gradients ``dL/dW = sum_t`` of the spatial gradient at step ``t`` (the temporal
  term ``dL/du[t+1] du[t+1]/du[t]`` dropped), with ``L = (1/T) sum_t CE(o[t], y)``;
* a second code path: JAX autodiff through the ordinary layer-major network whose neuron's carry is
  under ``stop_gradient`` (a neuron written here in plain jax.numpy);
* the K-of-T variant: its gradient is the reference's per-step gradients summed over K of T steps;
* a Spiking ResNet: at T = 1 the SLTT step is the BPTT step (batch norm included); its per-step
  forward in inference mode equals the model's logits; compiled memory is flat in T.
"""

from __future__ import annotations

import itertools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from snnjax import layers, models, neurons
from snnjax.models.resnet import BasicBlock, ResNet
from snnjax.train import sltt, steps
from snnjax.train.state import create_train_state

THRESHOLD = 0.5
B, H, W, C, K = 3, 6, 6, 1, 4


class TinySNN(nn.Module):
    """Layer-major like the ResNet: conv 3x3 (4 ch) -> spikes -> dense (6) -> spikes -> dense readout
    per step; ``per_step`` returns ``[B, T, K]``, else the time-averaged logits ``[B, K]``."""

    time_steps: int
    activation: Any
    per_step: bool = False

    @nn.compact
    def __call__(self, x, *, train: bool):
        del train
        steps_ = self.time_steps
        x = x if x.ndim == 5 else jnp.broadcast_to(x[:, None], (x.shape[0], steps_) + x.shape[1:])
        x = layers.merge_time(x)
        x = nn.Conv(4, (3, 3), padding="SAME", name="conv")(x)
        x = self.activation(name="act1")(x, steps_)
        x = nn.Dense(6, name="fc")(x.reshape(x.shape[0], -1))
        x = self.activation(name="act2")(x, steps_)
        out = layers.split_time(nn.Dense(K, name="head")(x), steps_)
        return out if self.per_step else out.mean(axis=1)


def neuron(kind: str):
    """The library's neuron for ``kind``: lif (hard reset), if_soft (IF, soft reset), plif."""
    decay = {"lif": 0.25, "if_soft": 1.0, "plif": 0.4}[kind]
    return lambda name: layers.SpikingNeuron(
        decay=decay,
        v_threshold=THRESHOLD,
        reset="soft" if kind == "if_soft" else "hard",
        learnable_decay=kind == "plif",
        name=name,
    )


class DetachedCarryLIF(nn.Module):
    """BPTT's neuron with the carry under stop_gradient, in plain jax.numpy (a second code path):
    ``u[t] = decay * sg(u[t-1]) * (1 - sg(s[t-1])) + I[t]`` (soft: ``- V_th * sg(s[t-1])``), spike with
    the rectangular surrogate (derivative 1 on ``|u - V_th| < 1/2``) as a straight-through term."""

    kind: str

    @nn.compact
    def __call__(self, x, time_steps):
        decay = {"lif": 0.25, "if_soft": 1.0, "plif": 0.4}[self.kind]
        if self.kind == "plif":
            decay = jax.nn.sigmoid(self.param("decay_logit", nn.initializers.constant(np.log(0.4 / 0.6)), ()))
        currents = layers.split_time(x, time_steps)
        u = s = jnp.zeros_like(currents[:, 0])
        out = []
        for t in range(time_steps):
            u_prev, s_prev = jax.lax.stop_gradient(u), jax.lax.stop_gradient(s)
            if self.kind == "if_soft":
                u = decay * u_prev - THRESHOLD * s_prev + currents[:, t]
            else:
                u = decay * u_prev * (1 - s_prev) + currents[:, t]
            z = u - THRESHOLD
            ramp = jnp.clip(z, -0.5, 0.5)
            s = (z > 0).astype(jnp.float32) + ramp - jax.lax.stop_gradient(ramp)
            out.append(s)
        return layers.merge_time(jnp.stack(out, axis=1))


# --- the NumPy reference -------------------------------------------------------------------------


def _patches(x):
    """im2col of a 3x3 SAME conv: ``[N, H, W, 9*C]`` ordered (kh, kw, c) like Flax's kernel."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = [p[:, i : i + x.shape[1], j : j + x.shape[2], :] for i in range(3) for j in range(3)]
    return np.concatenate(cols, axis=-1)


def reference_step_grads(params, x, labels, time_steps, kind):
    """Per-step SLTT gradients ``[g_0, ..., g_{T-1}]`` (dicts like ``params``) and per-step CE losses,
    written from the equations: forward step by step, backward through the step's spatial path only."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    hard = kind != "if_soft"
    if kind == "plif":
        decays = {a: 1 / (1 + np.exp(-p[a]["decay_logit"])) for a in ("act1", "act2")}
    else:
        decays = dict.fromkeys(("act1", "act2"), {"lif": 0.25, "if_soft": 1.0}[kind])
    k1 = p["conv"]["kernel"].reshape(-1, 4)
    onehot = np.eye(K)[labels]
    state = {a: (0.0, 0.0) for a in ("act1", "act2")}  # (u[t-1], s[t-1])

    def charge(a, current):
        u_prev, s_prev = state[a]
        u = decays[a] * u_prev * (1 - s_prev) + current if hard else decays[a] * u_prev - THRESHOLD * s_prev + current
        d_decay = u_prev * (1 - s_prev) if hard else u_prev + 0 * current  # du[t]/d decay, carry held fixed
        s = (u > THRESHOLD).astype(np.float64)
        surrogate = (np.abs(u - THRESHOLD) < 0.5).astype(np.float64)
        state[a] = (u, s)
        return s, surrogate, d_decay

    grads, step_losses = [], []
    for t in range(time_steps):
        xt = np.asarray(x[:, t] if x.ndim == 5 else x, np.float64)
        cols = _patches(xt)  # [B, H, W, 9C]
        s1, sur1, dd1 = charge("act1", cols @ k1 + p["conv"]["bias"])
        f1 = s1.reshape(len(xt), -1)
        s2, sur2, dd2 = charge("act2", f1 @ p["fc"]["kernel"] + p["fc"]["bias"])
        o = s2 @ p["head"]["kernel"] + p["head"]["bias"]
        z = np.exp(o - o.max(-1, keepdims=True))
        prob = z / z.sum(-1, keepdims=True)
        step_losses.append(-np.mean(np.log(prob[np.arange(len(xt)), labels])))
        g_o = (prob - onehot) / len(xt) / time_steps  # d(CE_t / T)/do[t]
        g_u2 = (g_o @ p["head"]["kernel"].T) * sur2  # spatial: through s2[t] only
        g_u1 = (g_u2 @ p["fc"]["kernel"].T).reshape(s1.shape) * sur1
        g = {
            "head": {"kernel": s2.T @ g_o, "bias": g_o.sum(0)},
            "fc": {"kernel": f1.T @ g_u2, "bias": g_u2.sum(0)},
            "conv": {
                "kernel": (cols.reshape(-1, cols.shape[-1]).T @ g_u1.reshape(-1, 4)).reshape(p["conv"]["kernel"].shape),
                "bias": g_u1.sum((0, 1, 2)),
            },
        }
        if kind == "plif":  # d sigmoid(w)/dw = lambda (1 - lambda)
            for a, g_u, dd in (("act1", g_u1, dd1), ("act2", g_u2, dd2)):
                g[a] = {"decay_logit": np.sum(g_u * dd) * decays[a] * (1 - decays[a])}
        grads.append(g)
    return grads, np.array(step_losses)


# --- helpers --------------------------------------------------------------------------------------


def _data(time_steps, events, seed=0):
    rng = np.random.default_rng(seed)
    shape = (B, time_steps, H, W, C) if events else (B, H, W, C)
    x = rng.normal(0.0, 1.5, shape).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(rng.integers(0, K, B), jnp.int32)


def _state(model, x, seed=0):
    variables = model.init(jax.random.key(seed), x, train=False)
    # Larger weights than the init, so that both layers fire and the surrogate windows are hit.
    variables = {"params": jax.tree.map(lambda a: a * 3.0 if a.ndim > 1 else a + 0.3, variables["params"])}
    return create_train_state(variables, optax.sgd(1.0), jax.random.key(7))


def _sltt_grads(model, state, x, y, sltt_k=0, step=None):
    """The gradient the SLTT step applied: with SGD at lr 1 it is ``params - new params``."""
    step = step or jax.jit(sltt.make_train_step(model, optax.sgd(1.0), sltt_k=sltt_k))
    new_state, metrics = step(state, (x, y))
    return jax.tree.map(
        lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64), state.params, new_state.params
    ), metrics


def _assert_trees_close(actual, expected, atol=2e-6, rtol=2e-5):
    flat_a, flat_e = jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected)
    assert len(flat_a) == len(flat_e)
    for (path, a), e in zip(flat_a, flat_e):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), atol=atol, rtol=rtol, err_msg=jax.tree_util.keystr(path)
        )


def _sum(trees):
    return jax.tree.map(lambda *xs: sum(xs), *trees)


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lif", "if_soft", "plif"])
@pytest.mark.parametrize("events", [False, True], ids=["static", "events"])
def test_sltt_gradients_equal_the_equations_and_bptt_with_a_detached_carry(kind, events):
    time_steps = 3
    x, y = _data(time_steps, events)
    model = TinySNN(time_steps, neuron(kind))
    state = _state(model, x)
    grads, metrics = _sltt_grads(model, state, x, y)

    per_step, step_losses = reference_step_grads(state.params, np.asarray(x), np.asarray(y), time_steps, kind)
    reference = _sum(per_step)
    assert max(float(np.abs(g).max()) for g in jax.tree.leaves(reference["conv"])) > 1e-3  # the deepest layer learns
    _assert_trees_close(grads, reference)
    np.testing.assert_allclose(float(metrics["loss"]), step_losses.mean(), rtol=1e-5)

    # The second code path: autodiff of the layer-major network with the neuron's carry detached.
    detached = TinySNN(time_steps, lambda name: DetachedCarryLIF(kind, name=name), per_step=True)

    def loss(params):
        logits = detached.apply({"params": params}, x, train=True)
        return jnp.mean(
            jnp.stack(
                [optax.softmax_cross_entropy_with_integer_labels(logits[:, t], y).mean() for t in range(time_steps)]
            )
        )

    _assert_trees_close(grads, jax.jit(jax.grad(loss))(state.params))

    # ... and the temporal terms matter here: full BPTT of the same loss is a different gradient.
    full = TinySNN(time_steps, neuron(kind), per_step=True)

    def bptt_loss(params):
        logits = full.apply({"params": params}, x, train=True)
        return jnp.mean(jax.vmap(lambda o: optax.softmax_cross_entropy_with_integer_labels(o, y).mean(), 1)(logits))

    bptt = jax.jit(jax.grad(bptt_loss))(state.params)
    gap = max(float(np.abs(np.asarray(a) - b).max()) for a, b in zip(jax.tree.leaves(bptt), jax.tree.leaves(reference)))
    assert gap > 1e-4


def test_unrolled_time_loop_gives_the_same_step():
    """``train.sltt_unroll``: the time loop unrolled (fast on XLA:CPU) is the same SLTT step as the scan."""
    time_steps = 3
    x, y = _data(time_steps, False)
    model = TinySNN(time_steps, neuron("plif"))
    state = _state(model, x)
    scanned, m_scanned = _sltt_grads(model, state, x, y)
    step = jax.jit(sltt.make_train_step(model, optax.sgd(1.0), unroll=True))
    unrolled, m_unrolled = _sltt_grads(model, state, x, y, step=step)
    _assert_trees_close(unrolled, scanned, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(float(m_unrolled["loss"]), float(m_scanned["loss"]), rtol=1e-6)


def test_sltt_k_backpropagates_k_random_steps_of_t():
    time_steps, k = 4, 2
    x, y = _data(time_steps, events=True, seed=1)
    model = TinySNN(time_steps, neuron("lif"))
    state = _state(model, x, seed=1)
    per_step, step_losses = reference_step_grads(state.params, np.asarray(x), np.asarray(y), time_steps, "lif")
    subsets = list(itertools.combinations(range(time_steps), k))
    drawn = set()
    step_fn = jax.jit(sltt.make_train_step(model, optax.sgd(1.0), sltt_k=k))
    for step in range(6):
        grads, metrics = _sltt_grads(model, state.replace(step=jnp.int32(step)), x, y, step=step_fn)
        matches = []
        for subset in subsets:
            expected = _sum([per_step[t] for t in subset])
            if all(
                np.allclose(a, e, atol=2e-6, rtol=2e-5)
                for a, e in zip(jax.tree.leaves(grads), jax.tree.leaves(expected))
            ):
                matches.append(subset)
        assert len(matches) == 1, (step, matches)
        drawn.add(matches[0])
        # The reported loss is the forward objective over all T steps.
        np.testing.assert_allclose(float(metrics["loss"]), step_losses.mean(), rtol=1e-5)
    assert len(drawn) > 1  # a new draw each iteration (6 draws of C(4, 2) = 6 subsets)
    full, _ = _sltt_grads(model, state, x, y, sltt_k=time_steps)  # K = T is plain SLTT
    _assert_trees_close(full, _sum(per_step))


def test_stateful_mode_leaves_the_default_neuron_unchanged():
    """Without the neuron_state collection the layer is the usual scan (same jaxpr as before)."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 5)), jnp.float32)
    module = layers.SpikingNeuron()
    out = module.apply({}, x, 3)
    np.testing.assert_array_equal(out, layers.merge_time(neurons.lif(layers.split_time(x, 3))))
    with pytest.raises(ValueError, match="time_steps must be 1"):
        module.apply({}, x, 3, mutable=[layers.NEURON_STATE])


def _tiny_resnet(time_steps):
    """A Spiking ResNet of the library (stem + 2 stages of one BasicBlock, width 4, BN), quick to compile."""
    cfg = models.model_config(width=4, time_steps=time_steps)
    return ResNet(
        stage_sizes=(1, 1),
        block_cls=BasicBlock,
        num_classes=K,
        activation=models.make_activation(cfg),
        time_steps=time_steps,
        width=4,
        bn_scale_init=0.5,
    )


def _resnet_state(model, x):
    variables = model.init(jax.random.key(0), x, train=False)
    variables = {k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}
    return create_train_state(variables, optax.sgd(0.1), jax.random.key(3))


def test_resnet_at_one_step_sltt_is_bptt_and_the_per_step_forward_is_the_model():
    x = jnp.asarray(np.random.default_rng(0).normal(0, 2, (4, 8, 8, 1)), jnp.float32)
    y = jnp.arange(4, dtype=jnp.int32) % K
    # T = 1: no temporal path, BN over B either way: SLTT's step is BPTT's (loss, update, BN statistics).
    model = _tiny_resnet(1)
    state = _resnet_state(model, x)
    tx = optax.sgd(0.1)
    ours, m_ours = jax.jit(sltt.make_train_step(model, tx))(state, (x, y))
    theirs, m_theirs = jax.jit(steps.make_train_step(model, tx))(state, (x, y))
    np.testing.assert_allclose(float(m_ours["loss"]), float(m_theirs["loss"]), rtol=1e-6)
    assert float(m_ours["grad_norm"]) > 0
    _assert_trees_close(ours.params, theirs.params, atol=1e-6)
    _assert_trees_close(ours.model_state, theirs.model_state, atol=1e-6)
    # T = 3, inference mode: the mean of the per-step logits is the model's output (same network).
    model = _tiny_resnet(3)
    state = _resnet_state(model, x)
    trained, _ = jax.jit(sltt.make_train_step(model, tx))(state, (x, y))  # moves the BN running stats
    variables = trained.variables
    per_step, _ = jax.jit(lambda v: sltt.forward_steps(model, v, x, train=False))(variables)
    expected = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
    assert float(jnp.abs(expected).max()) > 0.01
    np.testing.assert_allclose(per_step.mean(axis=1), expected, atol=1e-5)
    # Train mode: the step's loss is the mean of the per-step losses, with BN statistics per step.
    _, metrics = jax.jit(sltt.make_train_step(model, tx))(trained, (x, y))
    logits, _ = jax.jit(lambda v: sltt.forward_steps(model, v, x, train=True))(variables)
    per_step_ce = [optax.softmax_cross_entropy_with_integer_labels(logits[:, t], y).mean() for t in range(3)]
    np.testing.assert_allclose(float(metrics["loss"]), float(np.mean(per_step_ce)), rtol=1e-5)


def test_sltt_compiled_memory_is_flat_in_t_where_bptt_grows():
    """Temp memory of the compiled train step (XLA's memory_analysis) at T = 2 and T = 8."""
    x = jnp.zeros((8, 8, 8, 1), jnp.float32)
    y = jnp.zeros((8,), jnp.int32)
    tx = optax.sgd(0.1)
    temp = {}
    for time_steps in (2, 8):
        model = _tiny_resnet(time_steps)
        state = _resnet_state(model, x)
        for name, make in (("bptt", steps.make_train_step), ("sltt", sltt.make_train_step)):
            compiled = jax.jit(make(model, tx)).lower(state, (x, y)).compile()
            temp[name, time_steps] = compiled.memory_analysis().temp_size_in_bytes
    bptt_growth = temp["bptt", 8] / temp["bptt", 2]
    sltt_growth = temp["sltt", 8] / temp["sltt", 2]
    print({f"{k[0]}_T{k[1]}": v for k, v in temp.items()})
    assert bptt_growth > 2.0, temp  # BPTT keeps every step's activations for its backward pass
    assert sltt_growth < 1.2, temp  # SLTT keeps one step's
    assert temp["sltt", 8] < temp["bptt", 8] / 2, temp


def _train_config(**overrides):
    from snnjax import config as config_lib

    return config_lib.train_config(**overrides)


def test_the_step_is_chosen_in_one_place_and_refused_where_it_does_not_apply():
    snn = _tiny_resnet(2)
    assert sltt.choose_make_step(_train_config(), snn, steps.make_train_step) is steps.make_train_step
    chosen = sltt.choose_make_step(_train_config(through_time="sltt", sltt_k=1), snn, steps.make_train_step)
    assert chosen.func is sltt.make_train_step and chosen.keywords == {"sltt_k": 1, "unroll": 1}
    unrolled = sltt.choose_make_step(_train_config(through_time="sltt", sltt_unroll=True), snn, steps.make_train_step)
    assert unrolled.keywords == {"sltt_k": 0, "unroll": True}
    with pytest.raises(ValueError, match="its own step"):
        sltt.choose_make_step(_train_config(through_time="sltt"), snn, lambda *a, **k: None)
    ann = models.build(models.model_config(width=4, neuron="relu", time_steps=1), K)
    with pytest.raises(ValueError, match="needs a spiking ResNet"):
        sltt.choose_make_step(_train_config(through_time="sltt"), ann, steps.make_train_step)
    with pytest.raises(ValueError, match="sltt_k=3 must be in 0..time_steps=2"):
        sltt.make_train_step(snn, optax.sgd(0.1), sltt_k=3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"train.through_time": "tbptt"}, "config.train.through_time='tbptt' is not valid"),
        ({"train.sltt_k": -1}, "config.train.sltt_k=-1 is not valid"),
        (
            {"train.through_time": "sltt", "train.sltt_k": 5},
            "config.train.sltt_k=5 is not valid: must be <= model.time_steps=4",
        ),
        ({"train.through_time": "sltt", "model.neuron": "relu", "model.time_steps": 1}, "cuts the membrane recursion"),
        ({"train.through_time": "sltt", "pipeline": "snn2ann"}, "trains with its own step"),
        ({"train.through_time": "sltt", "model.neuron": "psn"}, "PSN has no recursion to cut"),
        ({"train.through_time": "sltt", "train.loss": "tet"}, "combine it with train.loss='ce', not 'tet'"),
    ],
)
def test_config_validation_names_the_key(load_config, overrides, message):
    from snnjax import config as config_lib

    config = load_config("baseline", "digits")
    assert config.train.through_time == "bptt" and config.train.sltt_k == 0
    with config.unlocked():
        for key, value in overrides.items():
            section, name = key.split(".") if "." in key else (None, key)
            (config[section] if section else config)[name] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        if "pipeline" in overrides:
            config_lib.validate_through_time(config)
        else:
            config_lib.validate(config)


def test_sltt_config_is_accepted(load_config):
    from snnjax import config as config_lib

    config = load_config("baseline", "digits")
    config.train.through_time, config.train.sltt_k = "sltt", 2
    config_lib.validate(config)
    assert isinstance(config, ml_collections.ConfigDict)
