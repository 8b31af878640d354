"""Speed/memory switches change nothing but speed: same spikes, gradients equal to float rounding.

The reference is always the plain path (``lax.scan`` LIF, no remat, XLA convolution gradients);
each fast path is a second, independent implementation checked against it (and the fused LIF's
hand-written adjoint also against a NumPy loop of the forward).
"""

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import neurons, surrogates
from snnjax.models import conv as conv_lib
from snnjax.models import factory
from snnjax.models.resnet import BasicBlock, ResNet


def _currents(shape=(3, 5, 7), seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), shape) * 0.6 + 0.3


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("surrogate", [surrogates.rectangular(1.0), surrogates.sigmoid(4.0)])
def test_fused_lif_matches_scan_spikes_and_all_gradients(reset, detach_reset, surrogate):
    x = _currents()
    w_s = jax.random.normal(jax.random.PRNGKey(1), x.shape)
    w_u = jax.random.normal(jax.random.PRNGKey(2), x.shape)
    decay = jnp.linspace(0.2, 0.9, x.shape[-1])  # per-neuron (PLIF-like) decay gets a gradient
    v_th = jnp.asarray(0.5)

    def loss(x, decay, v_th, impl):
        s, u = neurons.lif(
            x,
            decay=decay,
            v_threshold=v_th,
            reset=reset,
            detach_reset=detach_reset,
            surrogate=surrogate,
            return_membrane=True,
            impl=impl,
        )
        return jnp.sum(w_s * s) + jnp.sum(w_u * u)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)
    ref, fused = grad(x, decay, v_th, "scan"), grad(x, decay, v_th, "fused")
    for name, a, b in zip(("currents", "decay", "v_threshold"), ref, fused):
        assert a.shape == b.shape, name
        assert float(jnp.abs(a).max()) > 0, f"{name}: reference gradient is all zero, the test would be vacuous"
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=name)
    s_ref, u_ref = neurons.lif(x, decay=decay, reset=reset, return_membrane=True)
    s_fused, u_fused = neurons.lif(x, decay=decay, reset=reset, return_membrane=True, impl="fused")
    np.testing.assert_array_equal(s_fused, s_ref)
    np.testing.assert_array_equal(u_fused, u_ref)


def test_fused_lif_forward_matches_numpy_and_keeps_dtype():
    x = np.asarray(_currents((2, 6, 4)), np.float32)
    u, s = np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32)
    expected = []
    for t in range(6):
        u = np.float32(0.25) * u * (1 - s) + x[:, t]
        s = (u - np.float32(0.5) > 0).astype(np.float32)
        expected.append(s)
    out = neurons.lif(jnp.asarray(x), impl="fused")
    np.testing.assert_array_equal(out, np.stack(expected, 1))
    assert np.asarray(out).sum() > 0
    half = neurons.lif(jnp.asarray(x, jnp.bfloat16), impl="fused")
    assert half.dtype == jnp.bfloat16
    g = jax.grad(lambda c: neurons.lif(c, impl="fused").astype(jnp.float32).sum())(jnp.asarray(x, jnp.bfloat16))
    assert g.dtype == jnp.bfloat16


def test_fused_lif_is_differentiable_under_unroll_and_jit():
    x = _currents((2, 4, 3))
    ref = jax.grad(lambda c: jnp.sum(jnp.cos(neurons.lif(c) + c)))(x)
    for unroll in (1, True):
        got = jax.jit(jax.grad(lambda c: jnp.sum(jnp.cos(neurons.lif(c, impl="fused", unroll=unroll) + c))))(x)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_unknown_impl_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="scan"):
        neurons.lif(jnp.zeros((1, 2, 3)), impl="cuda")


@contextlib.contextmanager
def _split_positions(n: int):
    """Small pieces for the split kernel gradient, so that tiny test shapes are really split."""
    old, conv_lib.SPLIT_POSITIONS = conv_lib.SPLIT_POSITIONS, n
    try:
        yield
    finally:
        conv_lib.SPLIT_POSITIONS = old


def _xla_conv(a, b, s, p):
    return jax.lax.conv_general_dilated(a, b, s, p, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _count_convs(fn, *args) -> int:
    """Convolutions in the lowered program (what XLA is asked to run)."""
    return jax.jit(fn).lower(*args).as_text().count("stablehlo.convolution")


@pytest.mark.parametrize("impl", ["split", "matmul"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [1, 3])
def test_fast_kernel_gradients_equal_xla_conv_gradients(impl, stride, kernel):
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 6, 6, 3))
    w = jax.random.normal(jax.random.PRNGKey(1), (kernel, kernel, 3, 5))
    pad = ((kernel // 2,) * 2,) * 2
    cot = jax.random.normal(jax.random.PRNGKey(2), (5, 6 // stride, 6 // stride, 5))

    def run(conv):
        y, vjp = jax.vjp(lambda a, b: conv(a, b, (stride, stride), pad), x, w)
        return y, vjp(cot)

    y_ref, (dx_ref, dw_ref) = run(_xla_conv)
    with _split_positions(20):  # stride 1: 36 outputs -> 5 pieces of 1; stride 2: 9 -> pieces 2, 2, 1
        conv = conv_lib.conv_impl(impl)
        y, (dx, dw) = run(conv)
        n_convs = _count_convs(
            lambda a, b: jax.vjp(lambda a_, b_: conv(a_, b_, (stride, stride), pad), a, b)[1](cot), x, w
        )
    if impl == "split":
        assert n_convs == 1 + (5 if stride == 1 else 3)  # the input gradient, one per piece (no forward: unused)
    np.testing.assert_array_equal(y, y_ref)
    if impl == "split":
        np.testing.assert_array_equal(dx, dx_ref)  # XLA's own input gradient
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-5, atol=1e-5)


def test_split_piece_targets_output_positions():
    assert [conv_lib.split_piece(128, hw * hw, 2048) for hw in (32, 16, 8, 4)] == [2, 8, 32, 128]
    assert conv_lib.split_piece(3, 4096, 2048) == 1 and conv_lib.split_piece(3, 1, 2048) == 3


@pytest.mark.parametrize("impl", ["split", "matmul"])
def test_fast_convs_reject_dilation_with_the_fix(impl):
    with pytest.raises(ValueError, match="conv_grad='xla'"):
        conv_lib.conv_impl(impl)(
            jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), (1, 1), ((1, 1), (1, 1)), rhs_dilation=(2, 2)
        )


@pytest.mark.parametrize("eigen", [False, True])
def test_auto_conv_splits_only_on_cpu_with_ynn_convolutions(eigen, monkeypatch):
    assert jax.default_backend() == "cpu"
    monkeypatch.setattr(conv_lib.runtime, "eigen_convolutions", lambda: eigen)
    x, w = jnp.ones((4, 8, 8, 2)), jnp.ones((3, 3, 2, 2))
    grad = lambda conv, **kw: (
        lambda a, b: jax.grad(  # noqa: E731
            lambda b_: jnp.sum(conv(a, b_, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"), **kw))
        )(b)
    )
    with _split_positions(64):  # 64 outputs per example -> 4 pieces
        # Only the kernel gradient is asked for: one convolution per piece, or XLA's single one.
        assert _count_convs(grad(conv_lib.conv_auto_grad), x, w) == (1 if eigen else 4)
        assert _count_convs(grad(conv_lib.conv_auto_grad, rhs_dilation=(2, 2)), x, w) == 1  # split cannot


@functools.cache
def _loss_and_grads(overrides: tuple, static: bool = True):
    """Loss, logits, mutated state and parameter gradients of a 2-stage spiking ResNet (width 4).

    Two stages (one identity block, one strided block with a 1x1 shortcut) exercise every layer
    kind of ResNet-18/34 at a fraction of the compile time.
    """
    overrides = dict(overrides)
    split_positions = overrides.pop("split_positions", conv_lib.SPLIT_POSITIONS)
    # The reference is the plain path whatever the library's defaults are.
    cfg = factory.model_config(width=4, time_steps=3, **{"unroll": 1, "conv_grad": "xla", **overrides})
    model = ResNet(
        stage_sizes=(1, 1),
        block_cls=BasicBlock,
        num_classes=5,
        activation=factory.make_activation(cfg),
        time_steps=3,
        width=4,
        bn_scale_init=0.5,
        remat=cfg.remat,
        conv_grad=cfg.conv_grad,
    )
    shape = (2, 8, 8, 3) if static else (2, 3, 8, 8, 3)
    x = jax.random.normal(jax.random.PRNGKey(3), shape) * 2.0
    labels = jnp.array([1, 3])
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.PRNGKey(0))

    def loss(params):
        (logits, state) = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            x,
            train=True,
            mutable=["batch_stats", "spike_stats"],
        )
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, labels[:, None], 1).mean(), (logits, state)

    with _split_positions(split_positions):
        (value, (logits, state)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
    return value, logits, state, grads


# Three groups keep the compile count (the cost of this file) low; the PLIF/event test below runs
# all four switches at once, and the fused LIF and the fast convs are also tested alone above.
# 24 output positions a piece: the 6 = B*T examples of every layer are really split.
FAST_PATHS = [
    (("lif_impl", "fused"), ("unroll", 0)),
    (("remat", True), ("conv_grad", "matmul")),
    (("conv_grad", "split"), ("split_positions", 24)),
]


@pytest.mark.parametrize("overrides", FAST_PATHS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o))
def test_model_fast_paths_give_same_spikes_logits_and_gradients(overrides):
    value_ref, logits_ref, state_ref, grads_ref = _loss_and_grads(())
    value, logits, state, grads = _loss_and_grads(overrides)
    # Identical forward arithmetic: every layer's firing rate and the logits are bit-equal.
    rates_ref = jax.tree_util.tree_leaves(state_ref["spike_stats"])
    rates = jax.tree_util.tree_leaves(state["spike_stats"])
    assert len(rates) == len(rates_ref) == 5
    assert any(0 < float(r) < 1 for r in rates_ref), "no layer fires: the spike comparison would be vacuous"
    np.testing.assert_array_equal(np.array(rates), np.array(rates_ref))
    np.testing.assert_array_equal(logits, logits_ref)
    np.testing.assert_array_equal(value, value_ref)
    flat_ref = jax.tree_util.tree_flatten_with_path(grads_ref)[0]
    flat = dict(jax.tree_util.tree_flatten_with_path(grads)[0])
    assert set(flat) == {p for p, _ in flat_ref}
    for path, g_ref in flat_ref:
        scale = float(jnp.abs(g_ref).max()) + 1e-6
        np.testing.assert_allclose(flat[path] / scale, g_ref / scale, atol=2e-5, err_msg=jax.tree_util.keystr(path))


def test_fast_paths_on_event_input_and_plif():
    base = (("neuron", "plif"),)
    ref = _loss_and_grads(base, static=False)
    got = _loss_and_grads(
        base + (("lif_impl", "fused"), ("remat", True), ("conv_grad", "split"), ("split_positions", 24)), static=False
    )
    np.testing.assert_array_equal(got[1], ref[1])
    decay_ref = ref[3]["stage0_block0"]["act1"]["decay_logit"]
    decay = got[3]["stage0_block0"]["act1"]["decay_logit"]
    assert float(jnp.abs(decay_ref)) > 0
    np.testing.assert_allclose(decay, decay_ref, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("key, value, choices", [("lif_impl", "cuda", "scan"), ("conv_grad", "cudnn", "matmul")])
def test_config_rejects_bad_switch_values(key, value, choices):
    with pytest.raises(ValueError, match=choices):
        factory.build_model(factory.model_config(width=4, **{key: value}), num_classes=3)


def test_build_model_wires_the_switches_and_defaults():
    default = factory.build_model(factory.model_config(width=4), num_classes=3)
    assert (default.remat, default.conv_grad, default.activation.keywords["impl"]) == (False, "auto", "scan")
    fast = factory.build_model(
        factory.model_config(width=4, lif_impl="fused", remat=True, conv_grad="matmul"), num_classes=3
    )
    assert (fast.remat, fast.conv_grad, fast.activation.keywords["impl"]) == (True, "matmul", "fused")
