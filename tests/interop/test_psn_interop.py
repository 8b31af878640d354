"""SpikingJelly PSN / MaskedPSN / SlidingPSN <-> snnjax neuron='psn': one layer's forward and gradients
in torch (written here from SpikingJelly's equations) against snnjax's, a SpikingJelly-layout PSN ResNet's
logits against snnjax's, and bit-exact round trips of its state dict."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the snnjax[torch] extra

from torch import nn  # noqa: E402

from snnjax import models, neurons, surrogates  # noqa: E402
from snnjax.interop import export, layouts  # noqa: E402
from snnjax.interop import torch as tio  # noqa: E402

from .torch_reference import TorchvisionResNet, name_spikingjelly_neurons, randomize_bn  # noqa: E402

ALPHA = 2.0
TOL = 1e-4


class _ATanSpike(torch.autograd.Function):
    """SpikingJelly's ``surrogate.ATan(alpha=2)``: forward ``x >= 0``, backward ``alpha/2 / (1 + (pi/2 alpha x)^2)``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (ALPHA / 2) / (1 + (math.pi / 2 * ALPHA * x) ** 2)


class TorchPSN(nn.Module):
    """SpikingJelly's multi-step PSN (``variant="full"``), MaskedPSN and SlidingPSN (``conv`` backend, a
    second computation of the sliding sum): the same parameter and buffer names and shapes, on merged
    ``[T*B, ...]`` inputs."""

    def __init__(self, variant, T, k=2, lam=1.0):
        super().__init__()
        self.variant, self.T, self.k = variant, T, k
        if variant == "masked":
            self.register_buffer("_lambda_", torch.as_tensor(lam))
        if variant == "sliding":
            self.weight = nn.Parameter(torch.tensor([2.0 ** -(k - 1 - i) for i in range(k)]))
            self.bias = nn.Parameter(torch.as_tensor(-1.0))
        else:
            self.weight = nn.Parameter(torch.zeros(T, T))
            self.bias = nn.Parameter(torch.zeros(T, 1))
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            nn.init.constant_(self.bias, -1.0)
        if variant == "masked":
            ones = torch.ones(T, T)
            self.register_buffer("mask0", torch.tril(ones) * torch.triu(ones, -(k - 1)))
            self.register_buffer("mask1", ones)

    def h_seq(self, x_seq):  # [T, N, ...] -> H [T, N, ...]
        if self.variant == "sliding":
            shape = x_seq.shape
            x = nn.functional.pad(x_seq.flatten(1).t().unsqueeze(1), (self.k - 1, 0))
            return nn.functional.conv1d(x, self.weight.view(1, 1, -1)).squeeze(1).t().reshape(shape) + self.bias
        weight = self.weight
        if self.variant == "masked":
            weight = (self._lambda_ * self.mask0 + (1.0 - self._lambda_) * self.mask1) * weight
        return torch.addmm(self.bias, weight, x_seq.flatten(1)).view(x_seq.shape)

    def forward(self, x):  # merged [T*B, ...]
        return _ATanSpike.apply(self.h_seq(x.reshape((self.T, -1) + x.shape[1:]))).reshape(x.shape)


class SpikingJellyPSNResNet(TorchvisionResNet):
    """SpikingJelly's multi-step ``spiking_resnet`` with PSN neurons (``sn1`` after the stem, ``sn1, sn2`` in
    a block), static images repeated ``T`` times, ``fc`` per step, mean over ``T``."""

    def __init__(self, T, variant, k=2, lam=1.0, **kwargs):
        self.T = T

        def act(n):
            return [TorchPSN(variant, T, k, lam) for _ in range(n)]

        super().__init__(act=act, **kwargs)
        name_spikingjelly_neurons(self)

    def forward(self, x):
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        feats = self.features(x.flatten(0, 1))
        return self.fc(feats.reshape((self.T, -1) + feats.shape[1:])).mean(0)


def _state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "variant,k,lam", [("full", 2, 1.0), ("masked", 2, 1.0), ("masked", 3, 0.4), ("sliding", 3, 1.0)]
)
def test_one_layer_forward_and_gradients_equal_spikingjellys(variant, k, lam):
    torch.manual_seed(0)
    T, B = 4, 3
    layer = TorchPSN(variant, T, k, lam)
    with torch.no_grad():  # taps other than the exp init, so that their order shows; a threshold that fires
        if variant == "sliding":
            layer.weight.copy_(torch.tensor([0.9, -0.4, 0.6]))
        layer.bias.fill_(-0.1)
    x_t = (torch.randn(T * B, 5, 2) + 1.0).requires_grad_(True)
    g_out = torch.randn(T * B, 5, 2)
    out_t = layer(x_t)
    (out_t * g_out).sum().backward()

    # snnjax: batch-major [B, T, ...]
    x = jnp.asarray(x_t.detach().numpy().reshape(T, B, 5, 2).transpose(1, 0, 2, 3))
    g = jnp.asarray(g_out.numpy().reshape(T, B, 5, 2).transpose(1, 0, 2, 3))
    weight = jnp.asarray(layer.weight.detach().numpy())
    bias = jnp.asarray(layer.bias.detach().numpy().reshape(-1) if variant != "sliding" else layer.bias.detach().numpy())
    sg = surrogates.atan(ALPHA)

    def run(x_, w_, b_):
        if variant == "full":
            return neurons.psn(x_, w_, b_, sg)
        if variant == "masked":
            return neurons.masked_psn(x_, w_, b_, k, lam, sg)
        return neurons.sliding_psn(x_, w_, b_, sg)

    spikes, vjp = jax.vjp(run, x, weight, bias)
    to_bt = lambda a: np.asarray(a).reshape(T, B, 5, 2).transpose(1, 0, 2, 3)  # noqa: E731
    np.testing.assert_array_equal(np.asarray(spikes), to_bt(out_t.detach().numpy()))
    assert 0 < float(spikes.mean()) < 1
    gx, gw, gb = vjp(g)
    np.testing.assert_allclose(np.asarray(gx), to_bt(x_t.grad.numpy()), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gw), layer.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(gb).reshape(-1), layer.bias.grad.numpy().reshape(-1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant,k,lam", [("full", 2, 1.0), ("masked", 2, 0.5), ("sliding", 3, 1.0)])
def test_spikingjelly_psn_resnet_imports_runs_alike_and_round_trips(variant, k, lam):
    torch.manual_seed(3)
    T = 3
    model = SpikingJellyPSNResNet(T, variant, k, lam, depth=18, num_classes=5, width=4, in_channels=3, stem="cifar")
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():  # weights and thresholds that let spikes through every layer (the init nearly
        for name, p in model.named_parameters():  # silences a width-4 net), distinct per layer and step
            if ".sn" in f".{name}" and name.endswith("bias"):
                p.copy_(-0.5 * torch.rand(p.shape, generator=g))
            elif ".sn" in f".{name}" and p.dim() == 2:
                p.add_(torch.eye(T))
    model = randomize_bn(model)
    state = _state(model)
    assert layouts.detect(state.keys()) == "spikingjelly"  # told from torchvision by the PSN keys alone
    converted = tio.from_torch(state)
    arch = converted.report.arch
    assert (arch.psn, arch.psn_order, arch.psn_time_steps) == (
        variant,
        0 if variant == "full" else k,
        0 if variant == "sliding" else T,
    )
    assert arch.psn_lambda == pytest.approx(lam)
    buffers = [key for key in converted.report.left_out if not key.endswith("num_batches_tracked")]
    assert len(buffers) == (3 * 17 if variant == "masked" else 0)
    assert any("MaskedPSN" in n or "PSN" in n for n in converted.report.notes)

    section = tio.model_section(arch, "spikingjelly", models.model_config(neuron="psn", surrogate="atan"))
    if variant == "sliding":
        section.time_steps = T  # a SlidingPSN's T is the run's, not the checkpoint's
    assert (section.neuron, section.psn_variant, int(section.time_steps)) == ("psn", variant, T)
    images = np.random.default_rng(1).normal(size=(3, 3, 8, 8)).astype(np.float32) * 2
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    net = models.build(section, arch.num_classes)
    got = np.asarray(
        jax.jit(lambda v, x: net.apply(v, x, train=False))(converted.variables, images.transpose(0, 2, 3, 1))
    )
    assert np.max(np.abs(got - expected)) <= TOL
    assert np.std(expected, axis=0).max() > 1e-3  # the examples get different logits (spikes fired)

    # snnjax -> torch -> snnjax: bit-exact with the extras (a round trip); without them (an export of a
    # run) from config.model, which the torch model loads strictly and computes the same logits with.
    back = tio.to_torch(converted.variables, "spikingjelly", extras=converted.extras)
    assert set(back) == set(state)  # (the reference registers its neurons last; SpikingJelly in order)
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    again = tio.from_torch(back).variables
    jax.tree.map(np.testing.assert_array_equal, again, converted.variables)
    exported = tio.to_torch(converted.variables, "spikingjelly", model=section)
    assert set(exported) == set(state)
    fresh = SpikingJellyPSNResNet(T, variant, k, 0.0, depth=18, num_classes=5, width=4, in_channels=3, stem="cifar")
    fresh.load_state_dict({key: torch.from_numpy(np.array(v)) for key, v in exported.items()}, strict=True)
    with torch.no_grad():
        np.testing.assert_allclose(fresh.eval()(torch.from_numpy(images)).numpy(), expected, atol=TOL)
    with pytest.raises(ValueError, match="export PSN models as spikingjelly"):
        tio.to_torch(converted.variables, "torchvision")


def test_export_sidecar_names_spikingjellys_psn_modules():
    spec = export.neuron_spec(models.model_config(neuron="psn", psn_variant="masked", psn_order=3, psn_lambda=0.5))
    assert spec["node"] == "MaskedPSN" and (spec["k"], spec["T"], spec["lambda_init"]) == (3, 4, 0.5)
    assert export.neuron_spec(models.model_config(neuron="psn"))["node"] == "PSN"
    spec = export.neuron_spec(models.model_config(neuron="psn", psn_variant="sliding", psn_order=2, surrogate="atan"))
    assert spec["node"] == "SlidingPSN" and spec["k"] == 2 and spec["surrogate"] == "atan(1)"


def test_an_ann_teacher_section_refuses_psn_tensors():
    """An IDSNN teacher / transplant source must be an ANN: a PSN checkpoint keeps neuron='relu' there and
    its PSN tensors have no place (interop.source.check_shapes names the first)."""
    from snnjax.interop import source

    model = SpikingJellyPSNResNet(2, "full", depth=18, num_classes=5, width=2, in_channels=3, stem="cifar")
    converted = tio.from_torch(_state(model))
    section = tio.model_section(converted.report.arch, "spikingjelly", models.model_config(neuron="relu", time_steps=1))
    assert section.neuron == "relu"
    with pytest.raises(ValueError, match=r"sn1.weight has no place"):
        source.check_shapes(converted, models.build(section, 5), (8, 8, 3), 5, "teacher")
