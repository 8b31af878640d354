"""TET (Deng et al., ICLR 2022): the loss, the per-step logits, the train step and the config, against NumPy.

The reference is the official code's formula, written out in NumPy as it reads there: the batch-mean
cross-entropy of each time step's logits, summed over the steps and divided by T, and the MSE of every
logit from phi over all B*T*K entries; ``(1 - lambda) * L_TET + lambda * L_MSE``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax import config as config_lib
from snnjax import losses, models
from snnjax.train import steps
from snnjax.train.state import create_train_state, step_key


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_tet(outputs, labels, lam, phi):
    """``outputs`` [B, T, K] float64: the official ``TET_loss`` step by step."""
    b, t, k = outputs.shape
    loss_es = 0.0
    for step in range(t):
        log_p = np_log_softmax(outputs[:, step])
        loss_es += -log_p[np.arange(b), labels].mean()  # CrossEntropyLoss, batch mean
    loss_es /= t
    loss_mse = np.mean((outputs - phi) ** 2)  # MSELoss over every entry
    return (1 - lam) * loss_es + lam * loss_mse


def np_tet_grad(outputs, labels, lam, phi):
    """Analytic d(np_tet)/d(outputs)."""
    b, t, k = outputs.shape
    soft = np.exp(np_log_softmax(outputs))
    onehot = np.eye(k)[labels][:, None, :]
    return (1 - lam) * (soft - onehot) / (b * t) + lam * 2 * (outputs - phi) / (b * t * k)


def np_kl(student, teacher, tau):
    log_t, log_s = np_log_softmax(teacher / tau), np_log_softmax(student / tau)
    return float((np.exp(log_t) * (log_t - log_s)).sum() / student.shape[0])


@pytest.fixture
def outputs():
    rng = np.random.default_rng(0)
    return rng.normal(0, 3, (5, 4, 7)), rng.integers(0, 7, 5)


@pytest.mark.parametrize("lam,phi", [(0.0, 1.0), (1e-3, 1.0), (0.05, 1.0), (0.5, -0.5), (1.0, 2.0)])
def test_tet_matches_the_official_formula(outputs, lam, phi):
    z, y = outputs
    got = losses.tet(jnp.asarray(z, jnp.float32), jnp.asarray(y), lam=lam, target=phi)
    assert got.dtype == jnp.float32
    assert float(got) == pytest.approx(np_tet(z, y, lam, phi), rel=1e-5)


def test_tet_defaults_are_the_official_codes_and_it_differs_from_ce_of_the_mean(outputs):
    z, y = outputs
    assert (losses.TET_LAMBDA, losses.TET_TARGET) == (1e-3, 1.0)
    got = float(jax.jit(losses.tet)(jnp.asarray(z, jnp.float32), jnp.asarray(y)))
    assert got == pytest.approx(np_tet(z, y, 1e-3, 1.0), rel=1e-5)
    # Per-step CE is not the CE of the time-averaged logits (what loss="ce" trains).
    ce_of_mean = float(losses.cross_entropy(jnp.asarray(z.mean(1), jnp.float32), jnp.asarray(y)))
    assert abs(got - ce_of_mean) > 0.1


def test_tet_of_one_step_is_ce_and_mse():
    z = np.array([[[np.log(3.0), 0.0]], [[np.log(3.0), 0.0]]])  # [B=2, T=1, K=2]
    y = np.array([0, 1])
    ce = (-np.log(0.75) + np.log(4)) / 2
    mse = np.mean((z - 1.0) ** 2)
    got = losses.tet(jnp.asarray(z, jnp.float32), jnp.asarray(y), lam=0.25, target=1.0)
    assert float(got) == pytest.approx(0.75 * ce + 0.25 * mse, rel=1e-6)


@pytest.mark.parametrize("lam,phi", [(1e-3, 1.0), (0.3, -1.0)])
def test_tet_gradient_matches_numpy(outputs, lam, phi):
    z, y = outputs
    expected = np_tet_grad(z, y, lam, phi)
    # The analytic NumPy gradient is itself checked by central differences of the NumPy loss (float64).
    eps, numeric = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        dz = np.zeros_like(z)
        dz[idx] = eps
        numeric[idx] = (np_tet(z + dz, y, lam, phi) - np_tet(z - dz, y, lam, phi)) / (2 * eps)
    np.testing.assert_allclose(expected, numeric, rtol=1e-5, atol=1e-8)
    grad = jax.grad(losses.tet)(jnp.asarray(z, jnp.float32), jnp.asarray(y), lam=lam, target=phi)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-7)


def test_tet_mask_is_the_loss_of_the_valid_examples(outputs):
    z, y = outputs
    mask = np.array([True, False, True, True, False])
    got = losses.tet(jnp.asarray(z, jnp.float32), jnp.asarray(y), lam=0.1, target=1.0, mask=jnp.asarray(mask))
    assert float(got) == pytest.approx(np_tet(z[mask], y[mask], 0.1, 1.0), rel=1e-5)
    assert float(losses.tet(jnp.asarray(z, jnp.float32), jnp.asarray(y), mask=jnp.zeros(5, bool))) == 0.0


@pytest.mark.parametrize(
    "shape,labels,kwargs,message",
    [
        ((5, 7), np.zeros(5, int), {}, "[B, T, K]"),
        ((5, 4, 7), np.zeros(4, int), {}, "labels must be"),
        ((5, 4, 7), np.zeros(5, np.float32), {}, "integer class indices"),
        ((5, 4, 7), np.zeros(5, int), {"lam": 1.5}, "lam must be in [0, 1]"),
        ((5, 4, 7), np.zeros(5, int), {"mask": jnp.ones(4)}, "mask must have shape"),
    ],
)
def test_tet_refuses_bad_inputs(shape, labels, kwargs, message):
    with pytest.raises(ValueError, match="tet: ") as err:
        losses.tet(jnp.zeros(shape), jnp.asarray(labels), **kwargs)
    assert message in str(err.value)


# --- the Spiking ResNet's per-step logits and the train step ----------------------------------------


def _tiny(time_steps=3, batch=8, neuron="lif"):
    """A two-block Spiking ResNet (the library's ResNet and neuron, fewer blocks: compiles in seconds)."""
    cfg = models.model_config(neuron=neuron, time_steps=time_steps)
    model = models.ResNet(
        stage_sizes=(1, 1),
        block_cls=models.BasicBlock,
        num_classes=5,
        activation=models.make_activation(cfg),
        time_steps=time_steps,
        width=4,
        bn_scale_init=0.5 if neuron != "relu" else 1.0,
    )
    x = jax.random.normal(jax.random.key(1), (batch, 8, 8, 3))
    variables = jax.jit(lambda k: model.init(k, x[:1], train=False))(jax.random.key(0))
    return model, {k: v for k, v in variables.items() if k in ("params", "batch_stats")}, x


def test_per_step_logits_average_to_the_default_output():
    model, variables, x = _tiny(time_steps=3)
    # Training mode (batch statistics): at initialisation the running statistics leave a width-4 network
    # silent in eval mode (every logit = the zero bias), which would make the comparison trivial.
    apply = jax.jit(
        lambda v, x, per_step: model.apply(v, x, train=True, per_step=per_step, mutable=["batch_stats"])[0],
        static_argnums=2,
    )
    mean_logits = apply(variables, x, False)
    per_step = apply(variables, x, True)
    assert mean_logits.shape == (8, 5) and per_step.shape == (8, 3, 5) and per_step.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(per_step).mean(axis=1), mean_logits, rtol=1e-5, atol=1e-6)
    # The steps differ (the neurons integrate over time), so TET sees T different outputs.
    assert np.abs(np.diff(np.asarray(per_step), axis=1)).max() > 1e-4


def test_tet_train_step_loss_is_numpy_tet_of_the_per_step_logits_with_and_without_kd():
    model, variables, x = _tiny(time_steps=2)
    y = jnp.arange(8, dtype=jnp.int32) % 5
    tx = optax.sgd(0.1)
    state = create_train_state(variables, tx, jax.random.key(3))
    objective = steps.Objective("tet", tet_lambda=0.05, tet_target=1.0)
    teacher, tvars, _ = _tiny(time_steps=1, neuron="relu")
    kd = steps.Distillation(teacher, temperature=4.0, alpha=0.3)

    # The step's forward pass (same key: step_key of the state), per-step logits, in training mode.
    key = step_key(state, steps.MODEL_STREAM)
    per_step, _ = jax.jit(lambda p: steps.apply_train(model, p, state.model_state, x, key, per_step=True))(state.params)
    per_step = np.asarray(per_step, np.float64)
    assert per_step.shape == (8, 2, 5) and np.abs(np.diff(per_step, axis=1)).max() > 1e-4
    ref_tet = np_tet(per_step, np.asarray(y), 0.05, 1.0)
    t_logits = np.asarray(jax.jit(lambda v: teacher.apply(v, x, train=False))(tvars), np.float64)
    ref_kd = ref_tet + 0.3 * 4.0**2 * np_kl(per_step.mean(axis=1), t_logits, 4.0)

    _, m_tet = jax.jit(steps.make_train_step(model, tx, objective=objective))(state, (x, y), None)
    _, m_kd = jax.jit(steps.make_train_step(model, tx, distillation=kd, objective=objective))(state, (x, y), tvars)
    assert float(m_tet["loss"]) == pytest.approx(ref_tet, rel=1e-5)
    assert float(m_kd["loss"]) == pytest.approx(ref_kd, rel=1e-5)
    # accuracy: of the time-averaged logits, the network's output
    expected_acc = float(np.mean(per_step.mean(axis=1).argmax(-1) == np.asarray(y)))
    assert float(m_tet["accuracy"]) == pytest.approx(expected_acc) and float(m_tet["finite"]) == 1.0


# --- config -----------------------------------------------------------------------------------------


def test_objective_from_config_defaults_and_old_sections():
    assert steps.objective_from_config(config_lib.train_config()) == steps.Objective("ce", 1e-3, 1.0)
    assert steps.objective_from_config(config_lib.train_config(loss="tet", tet_lambda=0.05)) == steps.Objective(
        "tet", 0.05, 1.0
    )
    old = config_lib.train_config().to_dict()
    for key in ("loss", "tet_lambda", "tet_target"):
        del old[key]
    import ml_collections

    assert steps.objective_from_config(ml_collections.ConfigDict(old)) == steps.Objective()
    with pytest.raises(ValueError, match="Objective.loss='mse'"):
        steps.Objective("mse")


def test_config_accepts_tet_on_the_spiking_student(load_config):
    for name, preset in (("idsnn", "digits"), ("idsnn", "fashion_mnist_60k"), ("baseline", "digits")):
        cfg = load_config(name, preset)
        assert (cfg.train.loss, cfg.train.tet_lambda, cfg.train.tet_target) == ("ce", 1e-3, 1.0)
        cfg.train.loss = "tet"
        config_lib.validate(cfg)


@pytest.mark.parametrize(
    "name,preset,change,message",
    [
        (
            "baseline",
            "digits",
            {"train.loss": "mse"},
            "config.train.loss='mse' is not valid: choose one of ['ce', 'tet']",
        ),
        (
            "baseline",
            "digits",
            {"train.tet_lambda": 1.5},
            "config.train.tet_lambda=1.5 is not valid: must be in [0, 1]",
        ),
        ("teacher", "digits", {"train.loss": "tet"}, "config.model.neuron='relu' is an ANN"),
        ("idsnn", "digits", {"teacher.train.loss": "tet"}, "config.teacher.train.loss='tet' is not valid"),
        ("pretrain", None, {"pretrain.train.loss": "tet"}, "config.pretrain.train.loss='tet' is not valid"),
        ("snn2ann", None, {"train.loss": "tet"}, "TET needs per-time-step logits"),
        ("hybrid_stdb", None, {"train.loss": "tet"}, "TET needs per-time-step logits"),
    ],
)
def test_config_refuses_tet_where_it_is_not_defined_in_one_line(load_config, name, preset, change, message):
    cfg = load_config(name, preset)
    for dotted, value in change.items():
        *path, key = dotted.split(".")
        section = cfg
        for part in path:
            section = section[part]
        section[key] = value
    with pytest.raises(ValueError) as err:
        config_lib.validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
