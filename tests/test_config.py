"""Config validation (shared sections, then the method's own), the model registry, and old configs."""

import ml_collections
import pytest

from snnjax import config as config_lib
from snnjax import methods, models
from snnjax.train import preflight


def load_unlocked(load_config, name, arg):
    """An unlocked copy (tests add and delete keys)."""
    return ml_collections.ConfigDict(load_config(name, arg).to_dict())


PRESETS = [
    ("teacher", "digits"),
    ("baseline", "cifar100"),
    ("idsnn", "cifar100,kd_only,decay10"),
    ("hybrid_stdb", "digits"),
    ("hybrid_stdb", "cifar10"),
    ("snn2ann", "digits,bptt"),
    ("snn2ann", "cifar100,resnet17,stsu"),
    ("pretrain", "pipe_d,cifar10,scratch,sharpened"),
]


def test_config_validation_names_key_and_allowed_values():
    cfg = config_lib.base_config()
    config_lib.validate(cfg)
    bad = [
        ("model.time_steps", 0, "time_steps"),
        ("optim.lr", -0.1, "optim.lr"),
        ("data.name", "imagenet", "data.name"),
        ("model.surrogate", "erf", "surrogate"),
        ("train.nonfinite", "ignore", "nonfinite"),
        ("optim.name", "lion", "optim.name"),
    ]
    for key, value, match in bad:
        c = config_lib.base_config()
        section, field = key.split(".")
        c[section][field] = value
        with pytest.raises(ValueError, match=match):
            config_lib.validate(c)
    locked = config_lib.base_config()
    locked.lock()
    with pytest.raises(AttributeError, match="learning_rate"):
        locked.optim.learning_rate = 0.1


def test_presets_parse_and_reject_unknown_tokens():
    groups = {"dataset": ("cifar10", "digits"), "arm": ("idsnn", "baseline")}
    assert config_lib.parse_presets("digits,baseline", groups) == {"dataset": "digits", "arm": "baseline"}
    assert config_lib.parse_presets(None, groups) == {"dataset": "cifar10", "arm": "idsnn"}
    with pytest.raises(ValueError, match="valid presets"):
        config_lib.parse_presets("digitz", groups)


@pytest.mark.parametrize("name,arg", PRESETS)
def test_every_config_validates_and_its_model_builds_from_the_registry(name, arg, load_config):
    cfg = load_unlocked(load_config, name, arg)
    config_lib.validate(cfg)
    assert cfg.model.name in models.names()
    assert models.build(cfg.model, 10) is not None
    assert callable(methods.get(cfg.pipeline))


@pytest.mark.parametrize(
    "name,arg,key,value,match",
    [
        ("idsnn", "digits", "teacher.model.neuron", "lif", "config.teacher.model.neuron"),
        ("idsnn", "digits", "transplant.block_rule", "last", "config.transplant.block_rule"),
        ("idsnn", "digits", "teacher.optim.lr", 0.0, "config.teacher.optim.lr"),
        ("hybrid_stdb", "digits", "model.surrogate", "rectangular", "config.model.surrogate"),
        ("hybrid_stdb", "digits", "model.name", "vgg7", "config.model.name"),
        ("hybrid_stdb", "digits", "conversion.percentile", 0.0, "config.conversion.percentile"),
        ("hybrid_stdb", "digits", "conversion.balance", "stem", "config.conversion.balance"),  # VGG
        ("hybrid_stdb", "digits,resnet20", "conversion.balance", "blocks", "config.conversion.balance"),
        ("hybrid_stdb", "digits", "ann.optim.milestone_fractions", (0.5, 1.5), "milestone_fractions"),
        ("snn2ann", "digits", "arm", "bptt", "config.model.name='snn2ann_vgg'"),
        ("snn2ann", "digits", "kd.enabled", True, "config.kd.enabled"),
        ("snn2ann", "digits", "model.mapping_unit", "relu", "mapping_unit"),
        ("pretrain", "pipe_s,digits", "pretrain.activation", "gelu", "config.pretrain.activation"),
        ("pretrain", "pipe_s,digits", "model.neuron", "relu", "neuron=.relu."),
        ("pretrain", "pipe_d,digits", "pretrain.data.name", "imagenet", "config.pretrain.data.name"),
        ("baseline", "digits", "model.name", "vgg16", "config.model"),  # the ResNet keys do not fit a VGG
        ("baseline", "digits", "train.stop_at_accuracy", 90.0, r"config.train.stop_at_accuracy=90.0.*\[0, 1\]"),
        ("idsnn", "digits", "teacher.train.stop_at_accuracy", -0.5, "config.teacher.train.stop_at_accuracy"),
        ("baseline", "digits", "train.stop_on_plateau_epochs", -1, "config.train.stop_on_plateau_epochs"),
    ],
)
def test_each_method_validates_its_own_sections(name, arg, key, value, match, load_config):
    cfg = load_unlocked(load_config, name, arg)
    *path, field = key.split(".")
    section = cfg
    for part in path:
        section = section[part]
    section[field] = value
    with pytest.raises((ValueError, KeyError, AttributeError), match=match):
        config_lib.validate(cfg)


def test_model_registry_lists_every_family_and_names_the_valid_models(load_config):
    names = models.names()
    for name in ("resnet18", "sew_resnet34", "vgg5", "vgg16", "snn2ann_vgg", "snn2ann_resnet17", "bptt_vgg"):
        assert name in names
    with pytest.raises(ValueError, match="config.model.name='resnet19'.*vgg16"):
        models.build(models.model_config(name="resnet19"), 10)
    ann = models.ann_model_config(load_unlocked(load_config, "hybrid_stdb", "digits").model)
    assert (ann.name, ann.neuron, ann.time_steps, ann.encoding) == ("vgg5", "relu", 1, "direct")


def test_model_sections_saved_by_0_1_still_resume_and_rebuild(load_config):
    new = load_unlocked(load_config, "hybrid_stdb", "digits").to_dict()
    old_model = {k: v for k, v in new["model"].items() if k not in ("name", "surrogate", "surrogate_param")}
    old_model.update(
        arch="vgg5",
        name="vgg5",
        spike_grad="stdb",
        stdb_alpha=0.3,
        reset="soft",
        detach_reset=True,
        surrogate="triangle",
        surrogate_param=1.0,
    )  # what 0.1 wrote in checkpoints
    assert models.upgrade_legacy(old_model) == new["model"]
    assert preflight.resume_mismatches({**new, "model": old_model}, new) == []
    old_model["width"] = 8
    assert preflight.resume_mismatches({**new, "model": old_model}, new) == ["model.width: checkpoint 8 vs now 16"]

    # Data sections saved before normalization/mean/std were shared keys resume unchanged.
    legacy_data = {k: v for k, v in new["data"].items() if k not in ("normalization", "mean", "std")}
    idsnn = load_unlocked(load_config, "idsnn", "digits").to_dict()
    old_idsnn_data = {k: v for k, v in idsnn["data"].items() if k not in ("normalization", "mean", "std")}
    assert preflight.resume_mismatches({**idsnn, "data": old_idsnn_data}, idsnn) == []
    assert preflight.resume_mismatches({**new, "data": legacy_data}, new) == [
        "data.normalization: checkpoint 'dataset' vs now 'unit'"  # hybrid configs have set it since 0.1
    ]

    # Checkpoints written before the streaming keys existed (a 60k IDSNN run resumed across the upgrade).
    pre_stream = {k: v for k, v in idsnn["data"].items() if k not in ("streaming", "image_size", "records_dir")}
    assert preflight.resume_mismatches({**idsnn, "data": pre_stream}, idsnn) == []
    cropped = {**idsnn, "data": {**idsnn["data"], "image_size": 224}}
    assert preflight.resume_mismatches({**idsnn, "data": pre_stream}, cropped) == [
        "data.image_size: checkpoint 0 vs now 224"
    ]

    s2a = load_unlocked(load_config, "snn2ann", "digits").to_dict()
    old = {**s2a["model"], "arch": "vgg"}  # 0.1: arch + the name it set
    assert models.upgrade_legacy(old) == s2a["model"]
    idsnn_model = load_unlocked(load_config, "idsnn", "digits").model.to_dict()
    assert models.upgrade_legacy(dict(idsnn_model)) == idsnn_model  # today's sections pass unchanged


@pytest.mark.parametrize(
    "typed,changed,train_epochs,teacher_epochs",
    [
        ((), ["teacher.train.epochs", "train.epochs"], 2, 2),  # none typed: every stage
        (("epochs_all", "train.epochs"), ["teacher.train.epochs"], 3, 2),  # the command
        (("teacher.train.epochs",), ["train.epochs"], 2, 3),
        (("teacher.train",), ["train.epochs"], 2, 3),  # a typed section keeps the epochs inside it
        (("train",), ["teacher.train.epochs"], 3, 2),  # ... and only its own: not teacher.train
        (("teacher",), ["train.epochs"], 2, 3),
    ],
)
def test_epochs_all_leaves_the_epoch_keys_typed_on_the_command_line(
    load_config, typed, changed, train_epochs, teacher_epochs
):
    cfg = load_config("idsnn", "digits")  # locked, as the launcher's
    cfg.epochs_all, cfg.train.epochs, cfg.teacher.train.epochs = 2, 3, 3  # 3: what the typed keys said
    assert config_lib.apply_epochs_all(cfg, frozenset(typed)) == changed
    assert (cfg.train.epochs, cfg.teacher.train.epochs) == (train_epochs, teacher_epochs)
