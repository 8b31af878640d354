"""Weight initialisers by name: PyTorch's defaults (the official IDSNN code) vs torchvision's ResNet init."""

import jax
import numpy as np
import pytest

from snnjax import models
from snnjax.models import initializers


def _resnet18_params(init: str, width: int = 32):
    cfg = models.model_config(name="resnet18", neuron="relu", time_steps=1, width=width, init=init)
    model = models.build_model(cfg, num_classes=10)
    return model.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32), train=False)["params"]


def test_pytorch_init_is_uniform_with_bound_one_over_sqrt_fan_in():
    params = _resnet18_params("pytorch")
    kernel = np.asarray(params["stage1_block0"]["conv2"]["kernel"])  # [3, 3, 64, 64]
    bound = 1 / np.sqrt(3 * 3 * 64)
    assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.99 * bound
    assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)  # U(-b, b) has std b / sqrt(3)
    head = params["head"]
    fan_in = head["kernel"].shape[0]  # 8 * width = 256
    for leaf in (head["kernel"], head["bias"]):
        assert np.abs(np.asarray(leaf)).max() <= 1 / np.sqrt(fan_in)
    assert np.abs(np.asarray(head["bias"])).max() > 0  # PyTorch's Linear bias is not zero


def test_kaiming_fan_out_is_unchanged_default():
    params = _resnet18_params("kaiming_fan_out")
    kernel = np.asarray(params["stage1_block0"]["conv2"]["kernel"])
    # truncated normal, variance 2 / fan_out with fan_out = 3 * 3 * 64
    assert kernel.std() == pytest.approx(np.sqrt(2 / (3 * 3 * 64)), rel=0.03)
    np.testing.assert_array_equal(np.asarray(params["head"]["bias"]), 0)
    assert models.model_config().init == "kaiming_fan_out"


def test_ratio_of_scales_matches_the_audit():
    # At C_in = C_out: sqrt(2 / fan_out) / sqrt(1 / (3 fan_in)) = sqrt(6) ~ 2.45
    k = np.asarray(_resnet18_params("kaiming_fan_out")["stage1_block0"]["conv2"]["kernel"]).std()
    p = np.asarray(_resnet18_params("pytorch")["stage1_block0"]["conv2"]["kernel"]).std()
    assert k / p == pytest.approx(np.sqrt(6), rel=0.05)


def test_unknown_init_names_the_key():
    with pytest.raises(ValueError, match=r"config.model.init='xavier'.*pytorch"):
        initializers.conv_kernel("xavier")
