"""Losses and metrics against a NumPy reference and hand-computed values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import losses


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_cross_entropy(logits, labels, eps=0.0):
    k = logits.shape[-1]
    target = (1 - eps) * np.eye(k)[labels] + eps / k
    return float(np.mean(-(target * np_log_softmax(logits)).sum(-1)))


def np_kd(student, teacher, labels, tau, alpha):
    """CE + alpha * tau^2 * KL(p_t || p_s), KL summed over classes, mean over the batch."""
    log_t, log_s = np_log_softmax(teacher / tau), np_log_softmax(student / tau)
    kl = float((np.exp(log_t) * (log_t - log_s)).sum() / student.shape[0])
    return np_cross_entropy(student, labels) + alpha * tau**2 * kl, kl


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    student = rng.normal(0, 3, (6, 7)).astype(np.float64)
    teacher = rng.normal(0, 3, (6, 7)).astype(np.float64)
    labels = rng.integers(0, 7, 6)
    return student, teacher, labels


def test_cross_entropy_hand_values():
    # uniform logits over 4 classes: -log(1/4)
    assert float(losses.cross_entropy(jnp.zeros((1, 4)), jnp.array([2]))) == pytest.approx(math.log(4), rel=1e-6)
    # [ln 3, 0] label 0: p = 3/4 -> -ln(3/4); label 1: p = 1/4 -> ln 4; mean of both
    logits = jnp.array([[math.log(3), 0.0], [math.log(3), 0.0]])
    expected = (-math.log(0.75) + math.log(4)) / 2
    assert float(losses.cross_entropy(logits, jnp.array([0, 1]))) == pytest.approx(expected, rel=1e-6)
    # label smoothing 0.5 over 2 classes: target [0.75, 0.25] for label 0
    expected_ls = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert float(losses.cross_entropy(logits[:1], jnp.array([0]), label_smoothing=0.5)) == pytest.approx(
        expected_ls, rel=1e-6
    )


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_matches_numpy(batch, eps):
    student, _, labels = batch
    got = losses.cross_entropy(jnp.asarray(student, jnp.float32), jnp.asarray(labels), label_smoothing=eps)
    assert got.dtype == jnp.float32
    assert float(got) == pytest.approx(np_cross_entropy(student, labels, eps), rel=1e-5)


def test_kd_kl_hand_value_batchmean():
    # row 0: p_t = [1/4, 3/4], p_s = [1/2, 1/2]; row 1: identical distributions -> 0.
    # PyTorch KLDivLoss(reduction='batchmean') divides the total by B = 2 (not by B*K = 4).
    kl_row0 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    for tau in (1.0, 2.0):
        teacher = jnp.array([[0.0, tau * math.log(3)], [1.0, 2.0]])
        student = jnp.array([[0.0, 0.0], [1.0, 2.0]])
        got = losses.kd_kl(student, teacher, temperature=tau)
        assert float(got) == pytest.approx(kl_row0 / 2, rel=1e-5)
        labels = jnp.array([1, 1])
        ce = (math.log(2) + (math.log(1 + math.e) - 1.0)) / 2  # row 0: ln 2; row 1: ln(e + e^2) - 2
        assert float(losses.hinton_kd(student, teacher, labels, temperature=tau, alpha=0.3)) == pytest.approx(
            ce + 0.3 * tau**2 * kl_row0 / 2, rel=1e-5
        )


@pytest.mark.parametrize("tau,alpha", [(1.0, 0.5), (4.0, 0.3), (2.5, 1.0)])
def test_kd_matches_numpy(batch, tau, alpha):
    student, teacher, labels = batch
    ref_total, ref_kl = np_kd(student, teacher, labels, tau, alpha)
    s, t = jnp.asarray(student, jnp.float32), jnp.asarray(teacher, jnp.float32)
    assert float(losses.kd_kl(s, t, temperature=tau)) == pytest.approx(ref_kl, rel=1e-5)
    got = losses.hinton_kd(s, t, jnp.asarray(labels), temperature=tau, alpha=alpha)
    assert got.dtype == jnp.float32 and float(got) == pytest.approx(ref_total, rel=1e-5)
    assert float(jax.jit(losses.hinton_kd)(s, t, jnp.asarray(labels))) == pytest.approx(
        np_kd(student, teacher, labels, 4.0, 0.3)[0], rel=1e-5
    )  # defaults tau=4, alpha=0.3


def test_kd_kl_is_zero_for_equal_logits_and_stable_for_extremes():
    z = jnp.array([[1e4, -1e4, 0.0], [3.0, 1.0, -2.0]])
    assert float(losses.kd_kl(z, z)) == pytest.approx(0.0, abs=1e-7)
    # teacher puts all mass on class 0 (others underflow to exactly 0): KL = -log p_s(0) at tau = 1
    got = losses.kd_kl(jnp.zeros((1, 3)), jnp.array([[1e4, -1e4, -1e4]]), temperature=1.0)
    assert float(got) == pytest.approx(math.log(3), rel=1e-6)


def test_hinton_kd_reduces_to_cross_entropy(batch):
    student, teacher, labels = batch
    s, t, y = jnp.asarray(student, jnp.float32), jnp.asarray(teacher, jnp.float32), jnp.asarray(labels)
    assert float(losses.hinton_kd(s, t, y, temperature=1.0, alpha=0.0)) == float(losses.cross_entropy(s, y))


def test_hinton_kd_gradients(batch):
    student, teacher, labels = batch
    s, t, y = jnp.asarray(student, jnp.float32), jnp.asarray(teacher, jnp.float32), jnp.asarray(labels)
    tau, alpha, b = 4.0, 0.3, student.shape[0]
    grad_s, grad_t = jax.grad(losses.hinton_kd, argnums=(0, 1))(s, t, y, temperature=tau, alpha=alpha)
    np.testing.assert_array_equal(grad_t, np.zeros_like(teacher))
    # analytic: (softmax(z_s) - onehot) / B + alpha * tau^2 * (softmax(z_s/tau) - softmax(z_t/tau)) / (tau * B)
    soft = lambda z: np.exp(np_log_softmax(z))  # noqa: E731
    expected = (soft(student) - np.eye(7)[labels]) / b + alpha * tau * (soft(student / tau) - soft(teacher / tau)) / b
    np.testing.assert_allclose(grad_s, expected, rtol=1e-4, atol=1e-6)


def test_bfloat16_logits_give_float32():
    z = jnp.array([[0.5, -1.25, 2.0], [1.0, 1.0, 0.0]], jnp.bfloat16)
    t = jnp.array([[1.5, 0.25, -2.0], [0.0, 1.0, 0.0]], jnp.bfloat16)
    y = jnp.array([2, 0])
    for fn, ref in (
        (lambda a, b: losses.cross_entropy(a, y), np_cross_entropy(np.asarray(z, np.float64), [2, 0])),
        (
            lambda a, b: losses.hinton_kd(a, b, y),
            np_kd(np.asarray(z, np.float64), np.asarray(t, np.float64), np.array([2, 0]), 4.0, 0.3)[0],
        ),
    ):
        got = fn(z, t)
        assert got.dtype == jnp.float32 and float(got) == pytest.approx(ref, rel=1e-5)
    assert losses.accuracy(z, y).dtype == jnp.float32 and losses.correct_count(z, y).dtype == jnp.float32


def test_masks():
    logits = jnp.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [5.0, -5.0]])
    labels = jnp.array([0, 0, 1, 1])
    # argmax = [0, 1, 0, 0] -> correct [1, 0, 0, 0]
    assert float(losses.accuracy(logits, labels)) == 0.25
    assert float(losses.correct_count(logits, labels)) == 1.0
    mask = jnp.array([True, True, False, False])
    assert float(losses.accuracy(logits, labels, mask)) == 0.5
    assert float(losses.correct_count(logits, labels, mask)) == 1.0
    assert float(losses.accuracy(logits, labels, jnp.array([1.0, 0.0, 0.0, 0.0]))) == 1.0
    assert float(losses.accuracy(logits, labels, jnp.zeros(4, bool))) == 0.0  # nothing valid -> 0, not NaN
    # cross-entropy with a mask = cross-entropy of the valid rows only
    ce_valid = float(losses.cross_entropy(logits[:2], labels[:2]))
    assert float(losses.cross_entropy(logits, labels, mask=mask)) == pytest.approx(ce_valid, rel=1e-6)
    # hand value: rows 0, 1: -log(sigmoid(2)) and -log(sigmoid(-2))
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(2))) / 2
    assert ce_valid == pytest.approx(expected, rel=1e-6)
    # float weights: weighted mean
    w = jnp.array([1.0, 3.0, 0.0, 0.0])
    assert float(losses.cross_entropy(logits, labels, mask=w)) == pytest.approx(
        (math.log1p(math.exp(-2)) + 3 * math.log1p(math.exp(2))) / 4, rel=1e-6
    )
    assert float(losses.cross_entropy(logits, labels, mask=jnp.zeros(4))) == 0.0
    # KD terms honour the mask too
    teacher = jnp.array([[0.0, 1.0], [1.0, 0.0], [9.0, 0.0], [0.0, 9.0]])
    assert float(losses.hinton_kd(logits, teacher, labels, mask=mask)) == pytest.approx(
        float(losses.hinton_kd(logits[:2], teacher[:2], labels[:2])), rel=1e-6
    )


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"labels must be integer class indices \[B\] = \[3\].*got shape \(3, 4\)"):
        losses.cross_entropy(jnp.zeros((3, 4)), jnp.zeros((3, 4), jnp.int32))
    with pytest.raises(ValueError, match=r"logits must be \[B, K\], got shape \(3,\)"):
        losses.accuracy(jnp.zeros((3,)), jnp.zeros((3,), jnp.int32))
    with pytest.raises(ValueError, match="labels must be integer class indices, got dtype float32"):
        losses.cross_entropy(jnp.zeros((3, 4)), jnp.zeros((3,)))
    with pytest.raises(ValueError, match=r"\(2, 5\) \(student\) and \(2, 4\) \(teacher\)"):
        losses.kd_kl(jnp.zeros((2, 5)), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"mask must have shape \[B\] = \(3,\), got \(4,\)"):
        losses.correct_count(jnp.zeros((3, 4)), jnp.zeros((3,), jnp.int32), jnp.ones(4))
    with pytest.raises(ValueError, match="temperature must be > 0, got 0.0"):
        losses.kd_kl(jnp.zeros((2, 4)), jnp.zeros((2, 4)), temperature=0.0)
