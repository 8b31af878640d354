"""Fashion-MNIST / MNIST presets and the CIFAR ResNet layout on 28x28 inputs."""

import jax
import numpy as np
import pytest

from snnjax import config as config_lib
from snnjax import models


@pytest.mark.parametrize("name", ["baseline", "teacher", "idsnn"])
def test_fashion_mnist_cpu_preset(name, load_config):
    cfg = load_config(name, "fashion_mnist")
    config_lib.validate(cfg)
    assert (cfg.data.name, cfg.data.train_subset, cfg.data.crop_padding, cfg.data.flip) == (
        "fashion_mnist",
        6000,
        2,
        True,
    )
    assert cfg.model.width == 16 and cfg.model.init == "pytorch"
    assert cfg.train.epochs == (10 if name == "teacher" else 6)
    if name == "idsnn":
        assert (cfg.teacher.train.epochs, tuple(cfg.teacher.optim.milestones)) == (10, (6, 8))
        assert cfg.teacher.model.init == "pytorch" and cfg.teacher.model.width == 16


def test_full_and_mnist_presets(load_config):
    full = load_config("idsnn", "fashion_mnist_full")
    assert (full.model.width, full.data.train_subset, full.train.epochs) == (64, 0, 100)
    mnist = load_config("baseline", "mnist")
    assert (mnist.data.name, mnist.data.flip) == ("mnist", False)  # a mirrored digit is another shape


def test_cifar_resnet_layout_on_28x28():
    cfg = models.model_config(name="resnet18", neuron="lif", time_steps=2, width=4)
    model = models.build_model(cfg, num_classes=10)
    x = np.zeros((3, 28, 28, 1), np.float32)
    variables = model.init(jax.random.key(0), x, train=False)
    _, state = model.apply(variables, x, train=False, capture_intermediates=True, mutable=["intermediates"])
    inter = state["intermediates"]
    # merged [B*T, H, W, C] after each stage: strides 1/2/2/2 give 28 -> 14 -> 7 -> 4 (padding 1)
    shapes = [inter[f"stage{s}_block1"]["__call__"][0].shape for s in range(4)]
    assert shapes == [(6, 28, 28, 4), (6, 14, 14, 8), (6, 7, 7, 16), (6, 4, 4, 32)]


def test_bad_train_subset_and_init_are_rejected_by_validate(load_config):
    cfg = load_config("baseline", "fashion_mnist")
    cfg.data.train_subset = -5
    with pytest.raises(ValueError, match="data.train_subset"):
        config_lib.validate(cfg)
    cfg = load_config("baseline", "fashion_mnist")
    cfg.model.init = "xavier"
    with pytest.raises(ValueError, match=r"model.init='xavier'"):
        config_lib.validate(cfg)


@pytest.mark.parametrize("name", ["baseline", "teacher", "idsnn"])
def test_60k_presets_train_on_all_data_with_one_cosine_decay(name, load_config):
    cfg = load_config(name, "fashion_mnist_60k")
    config_lib.validate(cfg)
    sections = [cfg] + ([cfg.teacher] if name == "idsnn" else [])
    for section in sections:
        epochs = 5 if section is not cfg or name == "teacher" else 3
        assert (section.model.width, section.train.epochs, section.optim.schedule) == (16, epochs, "cosine")
    assert (cfg.data.name, cfg.data.train_subset, cfg.data.flip) == ("fashion_mnist", 0, True)
    mnist = load_config(name, "mnist_60k")
    assert (mnist.data.name, mnist.data.train_subset, mnist.data.flip) == ("mnist", 0, False)
    # the 6,000-image ablation preset keeps its step schedule
    assert load_config(name, "fashion_mnist").optim.schedule == "multistep"


@pytest.mark.parametrize(
    "name, arg",
    [("baseline", "imagenet"), ("teacher", "imagenet"), ("idsnn", "imagenet"), ("pretrain", "pipe_s,imagenet")],
)
def test_imagenet_presets_stream_224_crops_with_the_official_schedules(name, arg, load_config):
    from snnjax.data import from_records

    cfg = load_config(name, arg)
    config_lib.validate(cfg)
    assert from_records.enabled(cfg.data) and from_records.records_location(cfg.data) == ("imagenet2012", None)
    assert (cfg.data.image_size, cfg.data.crop_padding, cfg.data.batch_size) == (224, 0, 256)
    assert dict(cfg.data.options) == {"test_split": "validation"}
    assert tuple(cfg.data.mean) == (0.485, 0.456, 0.406) and tuple(cfg.data.std) == (0.229, 0.224, 0.225)
    assert cfg.model.dtype == "bfloat16" and cfg.optim.lr == 0.1
    if name == "pretrain":  # official: constant-lr ANN pretraining 100 epochs, fine-tuning 50 (x0.3 at 2/4/6/8)
        assert cfg.model.stem == "imagenet_nopool" and cfg.model.time_steps == 6
        assert (cfg.pretrain.train.epochs, cfg.pretrain.optim.schedule, cfg.train.epochs) == (100, "constant", 50)
        assert tuple(cfg.optim.milestones) == (2, 4, 6, 8) and cfg.optim.gamma == 0.3
    else:  # torchvision's ResNet recipe
        sections = [cfg] + ([cfg.teacher] if name == "idsnn" else [])
        for section in sections:
            assert section.model.stem == "imagenet" and section.train.epochs == 90
            assert tuple(section.optim.milestones) == (30, 60) and section.optim.weight_decay == 1e-4
    if name == "pretrain":
        with pytest.raises(ValueError, match="pipe_d"):
            load_config(name, "pipe_d,imagenet")
