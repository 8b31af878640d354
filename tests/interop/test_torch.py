"""PyTorch ResNet layouts -> snnjax and back: key names, forward equality in eval mode, bit-exact round trips.

Each reference model (tests/interop/torch_reference.py) is randomly initialised (BN statistics too),
converted, and run by snnjax on the same images: logits agree to 1e-4 (float32). Converting the
variables back gives the original ``state_dict`` bit for bit.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the snnjax[torch] extra; CI installs it (.ci/run)

from snnjax import models  # noqa: E402
from snnjax.interop import layouts  # noqa: E402
from snnjax.interop import torch as tio  # noqa: E402

from .torch_reference import (  # noqa: E402
    IDSNNResNet,
    IDSNNSpikingResNet,
    PyclsResNet,
    SpikingJellyResNet,
    TorchvisionResNet,
    randomize_bn,
)

TOL = 1e-4


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _snnjax_logits(converted, layout, images_nchw, **model_overrides):
    arch = converted.report.arch
    base = models.model_config(neuron="relu", time_steps=1, **model_overrides)
    model = models.build(tio.model_section(arch, layout, base), arch.num_classes)
    x = jnp.asarray(images_nchw.transpose(0, 2, 3, 1))
    return np.asarray(model.apply(converted.variables, x, train=False))


def _check(model, layout, fmt, images, **model_overrides):
    torch.manual_seed(0)
    model = randomize_bn(model)
    state = _state(model)
    converted = tio.from_torch(state, fmt)
    assert converted.report.layout == layout
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    got = _snnjax_logits(converted, layout, images, **model_overrides)
    assert got.shape == expected.shape
    err = np.max(np.abs(got - expected))
    assert err <= TOL, f"{layout}: max abs logit error {err}"
    assert np.std(expected, axis=0).max() > 1e-3  # the examples get different logits (spikes fired)
    back = tio.to_torch(converted.variables, layout, extras=converted.extras)
    assert list(back) == list(state) or set(back) == set(state)
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()}, strict=True)
    return converted


def _images(n=3, c=3, hw=16, seed=1):
    return np.random.default_rng(seed).normal(size=(n, c, hw, hw)).astype(np.float32)


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_torchvision_imagenet_stem_forward_and_round_trip(depth):
    torch.manual_seed(depth)
    model = TorchvisionResNet(depth, num_classes=7, width=8, in_channels=3, stem="imagenet")
    # 17x17: odd sizes exercise the stride-2 padding of the 7x7 conv, the max-pool and the 1x1 shortcuts.
    converted = _check(model, "torchvision", "auto", _images(hw=17), stem="imagenet")
    assert converted.report.arch.depth == depth and converted.report.arch.stem_kernel == 7


def test_torchvision_cifar_stem_and_one_channel_input():
    torch.manual_seed(3)
    model = TorchvisionResNet(18, num_classes=5, width=4, in_channels=1, stem="cifar")
    converted = _check(model, "torchvision", "torchvision", _images(c=1, hw=9))
    assert any("maxpool = Identity" in n for n in converted.report.notes)


def test_idsnn_resnet_layout():
    torch.manual_seed(4)
    model = IDSNNResNet(34, num_classes=10, width=4, in_channels=3)
    converted = _check(model, "idsnn", "idsnn", _images(hw=8))
    assert "conv3_x.0.shortcut.0.weight" in dict((t, s) for t, s, _ in converted.report.mapped)


def test_pycls_layout_basic_and_bottleneck():
    torch.manual_seed(5)
    _check(PyclsResNet(34, num_classes=6, width=4, stem="cifar"), "pycls", "auto", _images(hw=8))
    torch.manual_seed(6)
    _check(PyclsResNet(50, num_classes=6, width=4, stem="imagenet"), "pycls", "pycls", _images(hw=17), stem="imagenet")


def _snn_check(model, layout, fmt, images, **overrides):
    model = randomize_bn(model)
    state = _state(model)
    converted = tio.from_torch(state, fmt)
    assert converted.report.layout == layout
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    arch = converted.report.arch
    base = models.model_config(unroll=0, **overrides)
    model_j = models.build(tio.model_section(arch, layout, base), arch.num_classes)
    got = np.asarray(model_j.apply(converted.variables, jnp.asarray(images.transpose(0, 2, 3, 1)), train=False))
    assert np.max(np.abs(got - expected)) <= TOL
    assert np.std(expected, axis=0).max() > 1e-3  # the examples get different logits (spikes fired)
    back = tio.to_torch(converted.variables, layout, extras=converted.extras)
    assert set(back) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    return converted


def test_idsnn_spiking_resnet_layout():
    """models/S_ResNet.py: TDBN (``.bn``), stem padding 3, hard-reset LIF (decay 0.25, threshold 0.5)."""
    torch.manual_seed(7)
    model = IDSNNSpikingResNet(18, num_classes=10, width=4, in_channels=3, T=3)
    converted = _snn_check(model, "idsnn_snn", "auto", _images(hw=8) * 2, time_steps=3)
    assert converted.report.arch.stem_kernel == 3
    assert tio.model_section(converted.report.arch, "idsnn_snn").stem_padding == 3


@pytest.mark.parametrize("plif", [False, True])
def test_spikingjelly_layout(plif):
    torch.manual_seed(8)
    model = SpikingJellyResNet(
        T=3, tau=4.0 / 3.0, v_threshold=0.5, plif=plif, depth=18, num_classes=5, width=4, in_channels=3, stem="cifar"
    )
    if plif:  # distinct decays per layer, so that a wrong neuron mapping shows
        with torch.no_grad():
            for i, p in enumerate(q for n, q in model.named_parameters() if n.endswith(".w")):
                p.fill_(-0.8 - 0.1 * i)
    neuron = "plif" if plif else "lif"
    converted = _snn_check(model, "spikingjelly", "spikingjelly", _images(hw=8) * 2, time_steps=3, neuron=neuron)
    assert converted.report.arch.plif == plif
    if plif:  # detected from the PLIF weights alone
        assert layouts.detect(_state(model).keys()) == "spikingjelly"


def test_torchvision_key_names_and_parameter_counts_at_full_size():
    """At width 64, 3 channels and 1000 classes the copies have torchvision's tensors: its state_dict
    sizes (122 / 218 / 320 entries) and parameter counts (11,689,512 / 21,797,672 / 25,557,032), and
    the snnjax model built from the converted shapes has exactly these parameters."""
    for depth, entries, n_params in ((18, 122, 11_689_512), (34, 218, 21_797_672), (50, 320, 25_557_032)):
        model = TorchvisionResNet(depth)
        state = model.state_dict()
        assert len(state) == entries
        assert sum(p.numel() for p in model.parameters()) == n_params
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        arch = layouts.arch_from_torch("torchvision", shapes)
        assert (arch.depth, arch.width, arch.num_classes, arch.stem_kernel) == (depth, 64, 1000, 7)
        section = tio.model_section(arch, "torchvision", models.model_config(neuron="relu", time_steps=1))
        net = models.build(section, 1000)
        abstract = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))
        assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract["params"])) == n_params
        n_tensors = sum(1 for _, k in layouts.modules(arch) for _ in layouts.tensor_names(k))
        assert n_tensors == entries - sum(1 for k in state if k.endswith("num_batches_tracked"))


def test_every_tensor_is_reported():
    model = randomize_bn(IDSNNResNet(18, num_classes=3, width=2))
    state = _state(model)
    report = tio.from_torch(state).report
    mapped = [t for t, _, _ in report.mapped]
    assert sorted(mapped + list(report.left_out)) == sorted(state)
    assert all(k.endswith("num_batches_tracked") for k in report.left_out)
    lines = [" ".join(line.split()) for line in report.to_text().splitlines()]
    assert "conv1.0.weight -> params/stem_conv/kernel [OIHW -> HWIO]" in lines
    assert "fc.weight -> params/head/kernel [transposed]" in lines
    assert "conv1.1.running_var -> batch_stats/stem_bn/var [copied]" in lines
    assert "conv1.1.num_batches_tracked -- left out" in lines
    assert len(lines) == 1 + len(state) + len(report.notes)


def test_unknown_layout_lists_the_layouts_tried():
    state = {"features.0.weight": np.zeros((4, 3, 3, 3), np.float32), "classifier.weight": np.zeros((2, 4), np.float32)}
    with pytest.raises(ValueError) as err:
        tio.from_torch(state)
    msg = str(err.value)
    assert "\n" not in msg
    for name in ("idsnn_snn", "idsnn", "pycls", "torchvision"):
        assert name in msg
    assert "conv2_x.0.residual_function.0.weight" in msg  # what an IDSNN file would have
