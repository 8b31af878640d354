"""ResNet models: shapes, parameter counts, ANN/SNN parameter trees, BN statistics, encodings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import models


def _init_shapes(cfg, num_classes=10, image=(32, 32, 3)):
    model = models.build_model(cfg, num_classes)
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2,) + image), train=False))


def _count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("name,expected", [("resnet18", 11_173_962), ("resnet34", 21_282_122)])
def test_parameter_counts_match_torchvision_cifar_variant(name, expected):
    assert _count(_init_shapes(models.model_config(name=name, neuron="relu", time_steps=1))["params"]) == expected
    assert _count(_init_shapes(models.model_config(name=name, neuron="lif", time_steps=4))["params"]) == expected


def test_ann_and_snn_parameter_trees_are_identical():
    ann = _init_shapes(models.model_config(name="resnet34", neuron="relu", time_steps=1))
    snn = _init_shapes(models.model_config(name="resnet34", neuron="lif", time_steps=6))
    for col in ("params", "batch_stats"):
        assert jax.tree.structure(ann[col]) == jax.tree.structure(snn[col])
        assert jax.tree.map(lambda a: a.shape, ann[col]) == jax.tree.map(lambda a: a.shape, snn[col])


def _tiny(neuron="lif", T=3, name="resnet18", **kw):
    cfg = models.model_config(name=name, neuron=neuron, time_steps=T if neuron != "relu" else 1, width=4, **kw)
    model = models.build_model(cfg, 5)
    x = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
    variables = jax.jit(model.init, static_argnames="train")(jax.random.key(0), x, train=False)
    return _Jitted(model), {k: variables[k] for k in ("params", "batch_stats")}, x


class _Jitted:
    """The model with a jitted ``apply`` (eager op-by-op dispatch is ~10x slower on CPU)."""

    def __init__(self, model):
        self.apply = jax.jit(model.apply, static_argnames=("train", "mutable"))


@pytest.mark.parametrize(
    "name,neuron",
    [
        ("resnet18", "relu"),
        ("resnet18", "lif"),
        ("resnet18", "if"),
        ("resnet18", "plif"),
        ("sew_resnet18", "lif"),
        ("sew_resnet18", "relu"),
        ("resnet50", "relu"),
        ("resnet50", "lif"),
    ],
)
def test_forward_shapes_and_finite(neuron, name):
    model, variables, x = _tiny(neuron, name=name)
    logits = model.apply(variables, x, train=False)
    assert logits.shape == (4, 5) and logits.dtype == jnp.float32
    assert np.isfinite(np.asarray(logits)).all()


def test_plif_adds_one_decay_per_neuron_layer():
    _, lif_vars, _ = _tiny("lif")
    _, plif_vars, _ = _tiny("plif")
    extra = _count(plif_vars["params"]) - _count(lif_vars["params"])
    # stem + 8 blocks x (act1 + act_out)
    assert extra == 1 + 8 * 2


def test_batch_stats_update_in_training_mode_only():
    model, variables, x = _tiny("lif")
    logits, updates = model.apply(variables, x, train=True, mutable=("batch_stats",))
    before = variables["batch_stats"]["stem_bn"]["mean"]
    after = updates["batch_stats"]["stem_bn"]["mean"]
    # Flax momentum 0.9: new = 0.9 * old + 0.1 * batch mean (old mean is 0 at init).
    conv = jax.lax.conv_general_dilated(
        x,
        variables["params"]["stem_conv"]["kernel"],
        (1, 1),
        ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    np.testing.assert_allclose(after, 0.1 * conv.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    assert not np.allclose(before, after)
    out2 = model.apply(variables, x, train=False)
    np.testing.assert_allclose(out2, model.apply(variables, x, train=False))


def test_static_input_equals_explicitly_repeated_input():
    # Second code path: the stem runs once and is broadcast over T for static images; feeding the
    # image repeated T times as [B, T, H, W, C] must give the same logits and BN statistics.
    model, variables, x = _tiny("lif", T=3)
    repeated = jnp.broadcast_to(x[:, None], (4, 3) + x.shape[1:])
    a, ua = model.apply(variables, x, train=True, mutable=("batch_stats",))
    b, ub = model.apply(variables, repeated, train=True, mutable=("batch_stats",))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6), ua, ub)


def test_spiking_layers_report_firing_rates():
    model, variables, x = _tiny("lif")
    _, stats = model.apply(variables, x, train=False, mutable=("spike_stats",))
    rates = jax.tree.leaves(stats["spike_stats"])
    assert len(rates) == 17 and all(0.0 <= float(r) <= 1.0 for r in rates)


def test_bfloat16_compute_keeps_float32_params_and_logits():
    model, variables, x = _tiny("lif", dtype="bfloat16")
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    logits = model.apply(variables, x, train=False)
    assert logits.dtype == jnp.float32
    f32_model, _, _ = _tiny("lif")
    np.testing.assert_allclose(logits, f32_model.apply(variables, x, train=False), atol=0.15)


def test_gradients_reach_every_parameter_of_the_snn():
    model, variables, x = _tiny("lif", T=2)
    labels = jnp.arange(4) % 5

    def loss(params):
        logits, _ = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, x, train=True, mutable=("batch_stats",)
        )
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), labels])

    grads = jax.jit(jax.grad(loss))(variables["params"])
    nonzero = [float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads)]
    assert np.mean(nonzero) > 0.9


def test_config_errors_name_key_and_choices():
    with pytest.raises(ValueError, match=r"config.model.neuron='gelu'.*choose one of"):
        models.build_model(models.model_config(neuron="gelu"), 10)
    with pytest.raises(ValueError, match="config.model.name"):
        models.build_model(models.model_config(name="resnet19"), 10)
    with pytest.raises(ValueError, match="time_steps"):
        models.build_model(models.model_config(time_steps=0), 10)
    with pytest.raises(ValueError, match="ANN"):
        models.build_model(models.model_config(neuron="relu", time_steps=4), 10)
