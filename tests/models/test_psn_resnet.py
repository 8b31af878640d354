"""PSN Spiking ResNets (config.model.neuron='psn'): config validation, one jitted training step, a T
other than the training T, the IDSNN transplant and the pretraining copy into them, and the weight-shared
paths that refuse PSN."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from snnjax import layers, models, trees
from snnjax.methods.idsnn import transplant as tp

NUM_CLASSES = 5
X = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
N_ACTS = 1 + 2 * 8  # stem_act + (act1, act_out) x 8 BasicBlocks of a ResNet18


def _cfg(T=4, **overrides):
    return models.model_config(width=4, time_steps=T, **{"neuron": "psn", "surrogate": "atan", **overrides})


def _abstract(cfg):
    """The model and its variables' shapes (no compile: jax.eval_shape)."""
    model = models.build(cfg, NUM_CLASSES)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), X, train=False))
    return model, {k: shapes[k] for k in ("params", "batch_stats")}


def _filled(shapes, seed):
    """Distinct random values of ``shapes`` (cheaper than compiling an init under a busy CPU)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.uniform(0.1, 1.0, s.shape).astype(s.dtype), shapes)


def _psn_leaves(variables):
    return {p: v for p, v in trees.flatten(variables["params"]).items() if "act" in p[-2]}


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"psn_variant": "diagonal"}, r"config.model.psn_variant='diagonal' is not valid: choose one of"),
        ({"psn_order": 0}, r"config.model.psn_order=0 is not valid: must be an integer >= 1"),
        ({"psn_lambda": 1.5}, r"config.model.psn_lambda=1.5 is not valid: must be in \[0, 1\]"),
        ({"surrogate": "stdb"}, r"config.model.surrogate='stdb' is not valid: PSN neurons have no spike timing"),
    ],
)
def test_bad_psn_keys_are_refused_in_one_line(overrides, match):
    cfg = models.model_config(neuron="psn", **overrides)
    for check in (models.validate, lambda c: models.build(c, NUM_CLASSES)):
        with pytest.raises(ValueError, match=match) as err:
            check(cfg)
        assert "\n" not in str(err.value)
    models.validate(models.model_config(neuron="lif", psn_variant="diagonal"))  # only read for PSN


@pytest.mark.parametrize(
    "variant,weight,bias", [("full", (4, 4), (4,)), ("masked", (4, 4), (4,)), ("sliding", (3,), ())]
)
def test_every_neuron_of_a_psn_resnet_has_spikingjellys_parameters(variant, weight, bias):
    _, shapes = _abstract(_cfg(psn_variant=variant, psn_order=3))
    psn = _psn_leaves(shapes)
    assert len(psn) == 2 * N_ACTS
    for path, value in psn.items():
        assert value.shape == {"weight": weight, "bias": bias}[path[-1]], path
    others = [p for p in trees.flatten(shapes["params"]) if "act" not in p[-2]]
    ann = trees.flatten(_abstract(models.model_config(width=4, neuron="relu", time_steps=1))[1]["params"])
    assert sorted(others) == sorted(ann)  # the ANN's tree plus the neurons' parameters


def test_psn_resnet18_trains_one_jitted_step():
    """Masked PSN (k = 2, lambda = 1), width 4, T 4: init, one SGD step; BN gamma starts at v_threshold
    (the default psn_init='lif') and at 1 with psn_init='spikingjelly' (its threshold, -bias)."""
    model = models.build(_cfg(psn_variant="masked", psn_order=2), NUM_CLASSES)
    labels = jnp.arange(2) % NUM_CLASSES
    tx = optax.sgd(0.1)

    @jax.jit
    def init_and_step(key):
        variables = model.init(key, X, train=False)
        params, stats = variables["params"], variables["batch_stats"]

        def loss_fn(p):
            logits, new = model.apply(
                {"params": p, "batch_stats": stats}, X, train=True, mutable=["batch_stats", "spike_stats"]
            )
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), new

        (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return params, optax.apply_updates(params, updates), new, loss, grads

    params, stepped, new, loss, grads = init_and_step(jax.random.key(0))
    assert np.isfinite(float(loss))
    np.testing.assert_array_equal(params["stem_bn"]["scale"], np.full(4, 0.5))
    sj = models.build(_cfg(psn_variant="masked", psn_init="spikingjelly"), NUM_CLASSES)
    sj_values = sj.init(jax.random.key(0), X, train=False)["params"]
    np.testing.assert_array_equal(sj_values["stem_bn"]["scale"], np.ones(4))
    np.testing.assert_array_equal(sj_values["stem_act"]["bias"], -np.ones(4))
    np.testing.assert_array_equal(params["stem_act"]["bias"], np.full(4, -0.5))
    rates = [float(r) for r in jax.tree.leaves(new["spike_stats"])]
    assert len(rates) == N_ACTS and 0 < np.mean(rates) < 1
    g = _psn_leaves({"params": grads})
    assert all(np.all(np.isfinite(v)) for v in g.values())
    assert sum(float(np.abs(v).sum()) > 0 for v in g.values()) >= N_ACTS  # the surrogate reaches them
    band = np.tril(np.ones((4, 4))) * np.triu(np.ones((4, 4)), -1)  # lambda = 1, k = 2: only the band learns
    for path, v in g.items():
        if path[-1] == "weight":
            assert np.all(np.asarray(v)[band == 0] == 0), path
    moved = np.asarray(stepped["stem_act"]["bias"] - params["stem_act"]["bias"])
    assert np.abs(moved).max() > 0


def test_only_the_sliding_psn_runs_at_another_t():
    model8 = models.build(_cfg(T=8, psn_variant="sliding", psn_order=2), NUM_CLASSES)
    _, shapes4 = _abstract(_cfg(T=4, psn_variant="sliding", psn_order=2))
    _, shapes8 = _abstract(_cfg(T=8, psn_variant="sliding", psn_order=2))
    assert jax.tree.map(lambda s: s.shape, shapes4) == jax.tree.map(lambda s: s.shape, shapes8)
    logits = jax.eval_shape(lambda v: model8.apply(v, X, train=False), shapes4)
    assert logits.shape == (2, NUM_CLASSES)
    for variant in ("full", "masked"):
        _, shapes = _abstract(_cfg(T=4, psn_variant=variant))
        other = models.build(_cfg(T=8, psn_variant=variant), NUM_CLASSES)
        with pytest.raises(ValueError, match=rf"{variant} PSN weights are 4 x 4 \(T=4\) but the input has T=8"):
            jax.eval_shape(lambda v: other.apply(v, X, train=False), shapes)


def test_transplant_from_an_ann_keeps_the_psn_parameters():
    teacher = _filled(_abstract(models.model_config(width=4, neuron="relu", time_steps=1))[1], 1)
    student = _filled(_abstract(_cfg(T=2, psn_variant="masked"))[1], 2)
    out, report = tp.transplant(teacher, student, include_shortcut=True, include_head=True)
    assert jax.tree.structure(out) == jax.tree.structure(student)
    flat_t, flat_s, flat_o = (trees.flatten(v["params"]) for v in (teacher, student, out))
    for path, value in flat_o.items():
        if "act" in path[-2]:
            assert np.asarray(value).tobytes() == np.asarray(flat_s[path]).tobytes(), path
        else:
            np.testing.assert_array_equal(value, flat_t[path], err_msg=str(path))
    kept = [p for p, source in report.entries if source == "kept initialisation (neuron parameter)"]
    assert report.kept == len(kept) == 2 * N_ACTS and all(p.endswith(("/weight", "/bias")) for p in kept)


def test_pretraining_copy_keeps_the_psn_parameters():
    from snnjax.methods.pretrain import transfer

    source = _filled(_abstract(models.model_config(width=4, neuron="relu", time_steps=1))[1], 1)
    student = _filled(_abstract(_cfg(T=2))[1], 2)
    loaded, report = transfer.load_pretrained(dict(source), student)
    kept = report.kept_paths("not in the source")
    assert len(kept) == 2 * N_ACTS and all("act" in p for p in kept)
    np.testing.assert_array_equal(loaded["params"]["stem_act"]["weight"], student["params"]["stem_act"]["weight"])
    np.testing.assert_array_equal(loaded["params"]["stem_conv"]["kernel"], source["params"]["stem_conv"]["kernel"])


def test_the_ann_twin_of_a_psn_model_is_the_plain_ann():
    twin = models.ann_model_config(models.model_config(neuron="psn", psn_variant="sliding"))
    assert twin.neuron == "relu" and models.make_activation(twin) is layers.ReLU
    models.validate(twin)


def test_snn2ann_bptt_baseline_refuses_psn():
    from snnjax.methods.snn2ann import models as s2a

    cfg = ml_collections.ConfigDict({**s2a.model_config().to_dict(), "name": "bptt_vgg", "neuron": "psn"})
    with pytest.raises(ValueError, match="use if, lif or plif"):
        s2a.validate(cfg)
