"""Small PyTorch reference models with the exact ``state_dict`` key names and shapes of the published
layouts (written here from their published structure; torchvision is not installed beside the CPU
torch build): torchvision ``resnet``, the official IDSNN ``models/ResNet.py`` and ``models/S_ResNet.py``,
SpikingJelly's multi-step ``spiking_resnet`` and pycls ``ResNet``. Widths, input channels and the
number of classes are parameters so that tests stay small; at width 64, 3 channels and 1000 classes
the torchvision copy has torchvision's tensors exactly.

Spiking models take time-major inputs ``[T, B, C, H, W]`` as their originals do.
"""

from __future__ import annotations

import torch
from torch import nn

STAGES = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True)}


# ------------------------------------------------------------------------------------ torchvision


def _conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, bias=False)


class TVBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, downsample, act):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3), nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.acts = act(2)  # spiking: sn1, sn2 (registered as attributes below); ANN: ReLU

    def forward(self, x):
        out = self.acts[0](self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.acts[1](out + identity)


class TVBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, downsample, act):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, planes, 1), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = _conv(planes, planes * 4, 1), nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self.acts = act(3)

    def forward(self, x):
        out = self.acts[0](self.bn1(self.conv1(x)))
        out = self.acts[1](self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.acts[2](out + identity)


class _ReLUs(list):
    """ANN activations: parameter-free, so they add no state_dict keys (torchvision's ``relu``)."""

    def __init__(self, n):
        super().__init__([nn.functional.relu] * n)


class TorchvisionResNet(nn.Module):
    """torchvision.models.resnet.ResNet: ``conv1, bn1, relu, maxpool, layer1..4, avgpool, fc``.

    ``stem="cifar"``: the usual CIFAR adaptation (3x3 stride-1 conv1, maxpool = Identity).
    """

    def __init__(self, depth=18, num_classes=1000, width=64, in_channels=3, stem="imagenet", act=_ReLUs):
        super().__init__()
        sizes, bottleneck = STAGES[depth]
        block = TVBottleneck if bottleneck else TVBasicBlock
        k, s = (7, 2) if stem == "imagenet" else (3, 1)
        self.conv1 = nn.Conv2d(in_channels, width, k, stride=s, padding=(k - 1) // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.stem_act = act(1)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
        cin = width
        for i, n in enumerate(sizes):
            planes, blocks = width * 2**i, []
            for b in range(n):
                stride = 2 if (b == 0 and i > 0) else 1
                down = None
                if stride != 1 or cin != planes * block.expansion:
                    down = nn.Sequential(
                        _conv(cin, planes * block.expansion, 1, stride), nn.BatchNorm2d(planes * block.expansion)
                    )
                blocks.append(block(cin, planes, stride, down, act))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x):
        x = self.maxpool(self.stem_act[0](self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.features(x))


# ------------------------------------------------------------------------------------ SpikingJelly


class MultiStepLIF(nn.Module):
    """SpikingJelly's multi-step ``LIFNode(tau, decay_input=False, v_threshold, v_reset)`` (and
    ``ParametricLIFNode`` when ``plif``), on merged ``[T*B, ...]`` tensors with ``T`` given.

    Charge ``h = v * (1 - 1/tau) + x`` (PLIF: ``v - v * sigmoid(w) + x``), fire ``h >= v_threshold``,
    reset ``v = h * (1 - s)`` (``v_reset=0``) or ``v = h - s * v_threshold`` (``v_reset=None``).
    """

    def __init__(self, T, tau, v_threshold, v_reset=0.0, plif=False):
        super().__init__()
        self.T, self.tau, self.v_threshold, self.v_reset = T, tau, v_threshold, v_reset
        if plif:
            import math

            self.w = nn.Parameter(torch.as_tensor(-math.log(tau - 1.0)))
        else:
            self.w = None

    def forward(self, x):
        seq = x.reshape((self.T, -1) + x.shape[1:])
        v, out = torch.zeros_like(seq[0]), []
        for t in range(self.T):
            if self.w is None:
                h = v * (1.0 - 1.0 / self.tau) + seq[t]
            else:
                h = v - v * self.w.sigmoid() + seq[t]
            s = (h >= self.v_threshold).to(h.dtype)
            v = h * (1.0 - s) if self.v_reset is not None else h - s * self.v_threshold
            out.append(s)
        return torch.stack(out).reshape(x.shape)


def name_spikingjelly_neurons(model: TorchvisionResNet) -> None:
    """SpikingJelly's neuron names on a torchvision-layout ResNet built with spiking ``act``: ``sn1`` after
    the stem, ``sn1, sn2(, sn3)`` in each block (what its ``spiking_resnet`` state dict keys use)."""
    model.sn1 = model.stem_act[0]
    for i in range(1, 5):
        for block in getattr(model, f"layer{i}"):
            for j, neuron in enumerate(block.acts):
                setattr(block, f"sn{j + 1}", neuron)


class SpikingJellyResNet(TorchvisionResNet):
    """SpikingJelly's multi-step ``spiking_resnet``: torchvision's modules with a neuron after every BN
    (``sn1`` after the stem; ``sn1, sn2(, sn3)`` in a block), run on ``[T*B, ...]`` (what
    ``seq_to_ann_forward`` does), static images repeated ``T`` times, ``fc`` per step, mean over ``T``."""

    def __init__(self, T, tau, v_threshold, v_reset=0.0, plif=False, **kwargs):
        self.T = T

        def act(n):
            return [MultiStepLIF(T, tau, v_threshold, v_reset, plif) for _ in range(n)]

        super().__init__(act=act, **kwargs)
        name_spikingjelly_neurons(self)

    def forward(self, x):
        if x.dim() == 4:
            x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        feats = self.features(x.flatten(0, 1))  # [T*B, C]
        logits = self.fc(feats.reshape((self.T, -1) + feats.shape[1:]))  # [T, B, classes]
        return logits.mean(0)


# ------------------------------------------------------------------------------------ IDSNN


class IDSNNBlock(nn.Module):
    """models/ResNet.py BasicBlock / BottleNeck: ``residual_function`` and ``shortcut`` Sequentials."""

    def __init__(self, cin, cout, stride, bottleneck, conv=None, bn=None, act=None):
        super().__init__()
        conv = conv or (lambda i, o, k, s: _conv(i, o, k, s))
        bn = bn or nn.BatchNorm2d
        act = act or (lambda: nn.ReLU())
        exp = 4 if bottleneck else 1
        if bottleneck:
            layers = [
                conv(cin, cout, 1, 1),
                bn(cout),
                act(),
                conv(cout, cout, 3, stride),
                bn(cout),
                act(),
                conv(cout, cout * 4, 1, 1),
                bn(cout * 4),
            ]
        else:
            layers = [conv(cin, cout, 3, stride), bn(cout), act(), conv(cout, cout, 3, 1), bn(cout)]
        self.residual_function = nn.Sequential(*layers)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout * exp:
            self.shortcut = nn.Sequential(conv(cin, cout * exp, 1, stride), bn(cout * exp))
        self.out_act = act()

    def forward(self, x):
        return self.out_act(self.residual_function(x) + self.shortcut(x))


class IDSNNResNet(nn.Module):
    """models/ResNet.py ResNet: ``conv1`` (conv, BN, ReLU), ``conv2_x..conv5_x``, ``avg_pool``, ``fc``."""

    def __init__(self, depth=34, num_classes=100, width=64, in_channels=3):
        super().__init__()
        sizes, bottleneck = STAGES[depth]
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        cin = width
        for i, n in enumerate(sizes):
            blocks = []
            for b in range(n):
                blocks.append(IDSNNBlock(cin, width * 2**i, 2 if (b == 0 and i > 0) else 1, bottleneck))
                cin = width * 2**i * (4 if bottleneck else 1)
            setattr(self, f"conv{i + 2}_x", nn.Sequential(*blocks))
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        for i in range(2, 6):
            x = getattr(self, f"conv{i}_x")(x)
        return self.fc(torch.flatten(self.avg_pool(x), 1))


class MemUpdate(nn.Module):
    """models/S_ResNet.py mem_update on ``[T, ...]``: ``mem = mem_old * decay * (1 - spike) + x[t]``, spike ``mem > thresh``."""

    def __init__(self, T, decay=0.25, thresh=0.5):
        super().__init__()
        self.T, self.decay, self.thresh = T, decay, thresh

    def forward(self, x):
        mem, spike, out = torch.zeros_like(x[0]), torch.zeros_like(x[0]), torch.zeros_like(x)
        for t in range(self.T):
            mem = mem * self.decay * (1 - spike) + x[t] if t else x[t]
            spike = (mem > self.thresh).float()
            out[t] = spike
        return out


class TDBN(nn.Module):
    """models/S_ResNet.py batch_norm_2d: a ``BatchNorm3d`` named ``bn`` over ``[B, C, T, H, W]``."""

    def __init__(self, c):
        super().__init__()
        self.bn = nn.BatchNorm3d(c)

    def forward(self, x):  # [T, B, C, H, W]
        y = x.transpose(0, 2).contiguous().transpose(0, 1).contiguous()
        y = self.bn(y)
        return y.contiguous().transpose(0, 1).contiguous().transpose(0, 2)


class SnnConv(nn.Conv2d):
    """models/S_ResNet.py Snn_Conv2d: the same conv at every time step of ``[T, B, C, H, W]``."""

    def forward(self, x):
        return torch.stack([super(SnnConv, self).forward(x[t]) for t in range(x.shape[0])])


class IDSNNSpikingResNet(nn.Module):
    """models/S_ResNet.py ResNet_origin_18: stem conv pads 3, TDBN, mem_update, mean over time, ``fc``."""

    def __init__(self, depth=18, num_classes=100, width=64, in_channels=3, T=4):
        super().__init__()
        sizes, bottleneck = STAGES[depth]
        self.T = T

        def conv(i, o, k, s):
            return SnnConv(i, o, k, stride=s, padding=(k - 1) // 2, bias=False)

        def act():
            return MemUpdate(T)

        self.conv1 = nn.Sequential(SnnConv(in_channels, width, 3, padding=3, bias=False), TDBN(width))
        self.mem_update = MemUpdate(T)
        cin = width
        for i, n in enumerate(sizes):
            blocks = []
            for b in range(n):
                stride = 2 if (b == 0 and i > 0) else 1
                blocks.append(IDSNNBlock(cin, width * 2**i, stride, bottleneck, conv=conv, bn=TDBN, act=act))
                cin = width * 2**i * (4 if bottleneck else 1)
            setattr(self, f"conv{i + 2}_x", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.mem_update(self.conv1(x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)))
        for i in range(2, 6):
            x = getattr(self, f"conv{i}_x")(x)
        x = x.mean(dim=(3, 4))  # adaptive_avg_pool3d(.., (None, 1, 1)): [T, B, C]
        return self.fc(x.sum(dim=0) / x.shape[0])


# ------------------------------------------------------------------------------------ pycls


class PyclsBlock(nn.Module):
    """pycls ResBlock: ``proj``/``bn`` shortcut, ``f`` (Basic: a, a_bn, a_relu, b, b_bn; Bottleneck adds
    b_relu, c, c_bn; stride on the 3x3, RESNET.STRIDE_1X1=False), ``relu``."""

    def __init__(self, w_in, w_out, stride, w_b=None):
        super().__init__()
        self.proj_block = w_in != w_out or stride != 1
        if self.proj_block:
            self.proj = nn.Conv2d(w_in, w_out, 1, stride=stride, padding=0, bias=False)
            self.bn = nn.BatchNorm2d(w_out)
        f = nn.Module()
        if w_b is None:
            f.a, f.a_bn, f.a_relu = nn.Conv2d(w_in, w_out, 3, stride, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU()
            f.b, f.b_bn = nn.Conv2d(w_out, w_out, 3, 1, 1, bias=False), nn.BatchNorm2d(w_out)
        else:
            f.a, f.a_bn, f.a_relu = nn.Conv2d(w_in, w_b, 1, 1, 0, bias=False), nn.BatchNorm2d(w_b), nn.ReLU()
            f.b, f.b_bn, f.b_relu = nn.Conv2d(w_b, w_b, 3, stride, 1, bias=False), nn.BatchNorm2d(w_b), nn.ReLU()
            f.c, f.c_bn = nn.Conv2d(w_b, w_out, 1, 1, 0, bias=False), nn.BatchNorm2d(w_out)
        self.f = f
        self.relu = nn.ReLU()

    def forward(self, x):
        y = x
        for layer in self.f.children():
            y = layer(y)
        return self.relu((self.bn(self.proj(x)) if self.proj_block else x) + y)


class PyclsResNet(nn.Module):
    """pycls ResNet with four stages: ``stem`` (conv, bn, relu[, pool]), ``s1..s4`` of ``b1..``, ``head.fc``."""

    def __init__(self, depth=34, num_classes=10, width=64, in_channels=3, stem="cifar"):
        super().__init__()
        sizes, bottleneck = STAGES[depth]
        st = nn.Module()
        k, s = (3, 1) if stem == "cifar" else (7, 2)
        st.conv, st.bn, st.relu = (
            nn.Conv2d(in_channels, width, k, s, (k - 1) // 2, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        if stem != "cifar":
            st.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stem = st
        w_in = width
        for i, n in enumerate(sizes):
            stage = nn.Module()
            w_out = width * 2**i * (4 if bottleneck else 1)
            for b in range(n):
                blk = PyclsBlock(
                    w_in if b == 0 else w_out,
                    w_out,
                    2 if (b == 0 and i > 0) else 1,
                    width * 2**i if bottleneck else None,
                )
                stage.add_module(f"b{b + 1}", blk)
            setattr(self, f"s{i + 1}", stage)
            w_in = w_out
        head = nn.Module()
        head.avg_pool, head.fc = nn.AdaptiveAvgPool2d((1, 1)), nn.Linear(w_in, num_classes)
        self.head = head

    def forward(self, x):
        for layer in self.stem.children():
            x = layer(x)
        for i in range(1, 5):
            for blk in getattr(self, f"s{i}").children():
                x = blk(x)
        return self.head.fc(torch.flatten(self.head.avg_pool(x), 1))


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters (fresh ones are 0/1), so eval-mode BN matters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
    return model.eval()
