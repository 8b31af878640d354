"""PyTorch ResNet ``state_dict`` layouts: which torch module holds each snnjax ResNet module.

Pure Python (no torch, no JAX). A *layout* names the torch module of every module of
:class:`snnjax.models.resnet.ResNet`; an :class:`Arch` says which modules a network has. Both come
from the key names alone, so a checkpoint is recognised and its network described before any
tensor is converted.

snnjax module paths (``s``, ``b`` from 0) and their torch modules, per layout::

    snnjax                      torchvision / spikingjelly   idsnn (models/ResNet.py)           pycls
    stem_conv                   conv1                        conv1.0                            stem.conv
    stem_bn                     bn1                          conv1.1  (S_ResNet: conv1.1.bn)    stem.bn
    stage{s}_block{b}           layer{s+1}.{b}               conv{s+2}_x.{b}                    s{s+1}.b{b+1}
      conv1 / bn1               conv1 / bn1                  residual_function.0 / .1           f.a / f.a_bn
      conv2 / bn2               conv2 / bn2                  residual_function.3 / .4           f.b / f.b_bn
      conv3 / bn3 (bottleneck)  conv3 / bn3                  residual_function.6 / .7           f.c / f.c_bn
      shortcut_conv / _bn       downsample.0 / downsample.1  shortcut.0 / shortcut.1            proj / bn
    head                        fc                           fc                                 head.fc

``idsnn_snn`` is the official IDSNN ``models/S_ResNet.py``: the keys of ``models/ResNet.py`` with
every batch norm one level deeper (``.bn``, its TDBN wrapper around ``BatchNorm3d``). SpikingJelly's
``spiking_resnet`` zoo has torchvision's keys; its parametric LIF neurons (``ParametricLIFNode``)
add one ``w`` per neuron layer (``sn1``, ``sn2``, ``sn3`` of a block; ``sn1`` after the stem); its
parallel spiking neurons (``PSN``, ``MaskedPSN``, ``SlidingPSN``) add ``weight`` and ``bias`` there
(``MaskedPSN`` also the buffers ``_lambda_``, ``mask0``, ``mask1``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

# Layouts a converter knows; ``idsnn`` and ``idsnn_snn`` are both chosen by ``format="idsnn"``.
LAYOUTS = ("torchvision", "spikingjelly", "idsnn", "idsnn_snn", "pycls")
# Values of ``config.teacher.format`` / ``config.transplant.format`` (and the export CLI's --format).
FORMATS = ("auto", "torchvision", "spikingjelly", "idsnn", "pycls")
# Blocks per stage of every depth snnjax builds (snnjax.models.resnet.STAGE_SIZES, without importing JAX).
DEPTHS = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34, (3, 4, 6, 3, "b"): 50, (3, 4, 23, 3, "b"): 101}

Kind = str  # "conv" | "bn" | "fc" | "plif" | "psn"
PSN_BUFFERS = ("_lambda_", "mask0", "mask1")  # MaskedPSN's buffers: derived, not learned (convert.py)

_BLOCK_RE = {
    "torchvision": (re.compile(r"^layer(\d+)\.(\d+)\."), 1, 0),
    "spikingjelly": (re.compile(r"^layer(\d+)\.(\d+)\."), 1, 0),
    "idsnn": (re.compile(r"^conv(\d+)_x\.(\d+)\."), 2, 0),
    "idsnn_snn": (re.compile(r"^conv(\d+)_x\.(\d+)\."), 2, 0),
    "pycls": (re.compile(r"^s(\d+)\.b(\d+)\."), 1, 1),
}
_IDSNN_INNER = {"conv1": "0", "bn1": "1", "conv2": "3", "bn2": "4", "conv3": "6", "bn3": "7"}
_PYCLS_INNER = {"conv1": "f.a", "bn1": "f.a_bn", "conv2": "f.b", "bn2": "f.b_bn", "conv3": "f.c", "bn3": "f.c_bn"}


@dataclasses.dataclass(frozen=True)
class Arch:
    """What a ResNet checkpoint holds, read from its tensors' names and shapes.

    Attributes:
      stage_sizes: blocks per stage, e.g. ``(3, 4, 6, 3)``.
      bottleneck: Bottleneck blocks (1x1-3x3-1x1) rather than BasicBlocks.
      width: output channels of the stem conv (64 in torchvision).
      in_channels: input image channels of the stem conv.
      stem_kernel: 3 (CIFAR stem) or 7 (ImageNet stem).
      num_classes: outputs of the head.
      shortcuts: ``(stage, block)`` of every block with a 1x1 conv + BN shortcut.
      plif: the neuron layers carry a learnable decay (PLIF).
      psn: ``""``, or the neuron layers are parallel spiking neurons: ``"full"`` (SpikingJelly's ``PSN``),
        ``"masked"`` (``MaskedPSN``) or ``"sliding"`` (``SlidingPSN``).
      psn_order: ``k`` of a masked or sliding PSN (0 otherwise).
      psn_time_steps: ``T`` of a full or masked PSN's ``T x T`` weight (0 otherwise: sliding runs at any T).
      psn_lambda: a masked PSN's ``lambda`` (1.0 otherwise).
    """

    stage_sizes: tuple[int, ...]
    bottleneck: bool
    width: int
    in_channels: int
    stem_kernel: int
    num_classes: int
    shortcuts: frozenset[tuple[int, int]]
    plif: bool = False
    psn: str = ""
    psn_order: int = 0
    psn_time_steps: int = 0
    psn_lambda: float = 1.0

    @property
    def depth(self) -> int | None:
        """18/34/50/101 when snnjax has a model with these stage sizes and block type, else None."""
        key = tuple(self.stage_sizes) + (("b",) if self.bottleneck else ())
        return DEPTHS.get(key)

    @property
    def name(self) -> str:
        return f"resnet{self.depth}" if self.depth else f"resnet(stages={list(self.stage_sizes)})"


def block_inner(bottleneck: bool) -> tuple[str, ...]:
    """Conv/BN modules of one block, in order."""
    return ("conv1", "bn1", "conv2", "bn2") + (("conv3", "bn3") if bottleneck else ())


def block_neurons(bottleneck: bool) -> tuple[str, ...]:
    """snnjax neuron modules of one standard block (``act_out`` follows the residual add)."""
    return ("act1", "act2", "act_out") if bottleneck else ("act1", "act_out")


def modules(arch: Arch) -> list[tuple[tuple[str, ...], Kind]]:
    """Every snnjax module with tensors, ``(path, kind)``, in network order."""
    out: list[tuple[tuple[str, ...], Kind]] = [(("stem_conv",), "conv"), (("stem_bn",), "bn")]
    neuron = "plif" if arch.plif else "psn" if arch.psn else ""
    if neuron:
        out.append((("stem_act",), neuron))
    for s, n in enumerate(arch.stage_sizes):
        for b in range(n):
            block = f"stage{s}_block{b}"
            out += [((block, m), "conv" if m.startswith("conv") else "bn") for m in block_inner(arch.bottleneck)]
            if (s, b) in arch.shortcuts:
                out += [((block, "shortcut_conv"), "conv"), ((block, "shortcut_bn"), "bn")]
            if neuron:
                out += [((block, act), neuron) for act in block_neurons(arch.bottleneck)]
    out.append((("head",), "fc"))
    return out


def torch_name(layout: str, path: tuple[str, ...], bottleneck: bool = False) -> str:
    """The torch module (key prefix) of snnjax module ``path`` in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {list(LAYOUTS)}")
    top = path[0]
    if len(path) == 1:
        names = {
            "torchvision": {"stem_conv": "conv1", "stem_bn": "bn1", "head": "fc"},
            "spikingjelly": {"stem_conv": "conv1", "stem_bn": "bn1", "stem_act": "sn1", "head": "fc"},
            "idsnn": {"stem_conv": "conv1.0", "stem_bn": "conv1.1", "head": "fc"},
            "idsnn_snn": {"stem_conv": "conv1.0", "stem_bn": "conv1.1.bn", "head": "fc"},
            "pycls": {"stem_conv": "stem.conv", "stem_bn": "stem.bn", "head": "head.fc"},
        }[layout]
        if top not in names:
            raise ValueError(f"layout {layout!r} has no torch module for snnjax module {top!r}")
        return names[top]
    s, b = (int(x) for x in re.fullmatch(r"stage(\d+)_block(\d+)", top).groups())
    inner = path[1]
    if layout in ("torchvision", "spikingjelly"):
        sub = {"shortcut_conv": "downsample.0", "shortcut_bn": "downsample.1"}.get(inner, inner)
        if inner.startswith("act") and layout == "spikingjelly":
            sub = {"act1": "sn1", "act2": "sn2", "act_out": "sn3" if bottleneck else "sn2"}[inner]
        return f"layer{s + 1}.{b}.{sub}"
    if layout in ("idsnn", "idsnn_snn"):
        bn = ".bn" if layout == "idsnn_snn" else ""
        if inner in ("shortcut_conv", "shortcut_bn"):
            sub = "shortcut.0" if inner == "shortcut_conv" else f"shortcut.1{bn}"
        else:
            sub = f"residual_function.{_IDSNN_INNER[inner]}" + (bn if inner.startswith("bn") else "")
        return f"conv{s + 2}_x.{b}.{sub}"
    sub = {"shortcut_conv": "proj", "shortcut_bn": "bn"}.get(inner) or _PYCLS_INNER[inner]
    return f"s{s + 1}.b{b + 1}.{sub}"


def tensor_names(kind: Kind) -> tuple[str, ...]:
    """Torch tensor names of a module of ``kind`` (after its prefix)."""
    return {
        "conv": ("weight",),
        "bn": ("weight", "bias", "running_mean", "running_var"),
        "fc": ("weight", "bias"),
        "plif": ("w",),
        "psn": ("weight", "bias"),
    }[kind]


def _blocks(layout: str, keys: Iterable[str]) -> dict[int, int]:
    """``{stage: blocks}`` (from 0) found in ``keys`` for ``layout``."""
    regex, stage_offset, block_offset = _BLOCK_RE[layout]
    found: dict[int, int] = {}
    for key in keys:
        m = regex.match(key)
        if m:
            s, b = int(m.group(1)) - stage_offset, int(m.group(2)) - block_offset
            found[s] = max(found.get(s, 0), b + 1)
    return found


def fits(layout: str, keys: Iterable[str]) -> bool:
    """Whether ``keys`` look like ``layout``: its stem conv, its head and blocks named its way."""
    keys = set(keys)
    stem = torch_name(layout, ("stem_conv",)) + ".weight"
    head = torch_name(layout, ("head",)) + ".weight"
    if stem not in keys or head not in keys or not _blocks(layout, keys):
        return False
    bn_key = torch_name(layout, ("stem_bn",)) + ".weight"
    return bn_key in keys


def expected_keys(layout: str) -> str:
    """A few key names ``layout`` needs, for error messages."""
    paths = (("stem_conv",), ("stem_bn",), ("stage0_block0", "conv1"), ("head",))
    return ", ".join(torch_name(layout, p) + ".weight" for p in paths)


def detect(keys: Iterable[str], fmt: str = "auto") -> str | None:
    """The layout of ``keys`` given ``fmt`` (a value of :data:`FORMATS`), or None when none fits."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown checkpoint format {fmt!r}; choose one of {list(FORMATS)}")
    keys = list(keys)
    candidates = {
        "auto": ("idsnn_snn", "idsnn", "pycls", "spikingjelly", "torchvision"),
        "idsnn": ("idsnn_snn", "idsnn"),
    }.get(fmt, (fmt,))
    for layout in candidates:
        if layout == "spikingjelly" and fmt == "auto" and not any(_SJ_NEURON_KEY.search(k) for k in keys):
            continue  # same keys as torchvision; only PLIF / PSN weights tell SpikingJelly apart
        if fits(layout, keys):
            return layout
    return None


_SJ_NEURON_KEY = re.compile(r"(^|\.)(sn\d+\.weight|sn\d+\.bias)$|\.w$")


def tried(fmt: str) -> tuple[str, ...]:
    """Layouts :func:`detect` tries for ``fmt`` (for error messages)."""
    return {"auto": ("idsnn_snn", "idsnn", "pycls", "torchvision"), "idsnn": ("idsnn_snn", "idsnn")}.get(fmt, (fmt,))


def arch_from_torch(layout: str, shapes: Mapping[str, tuple[int, ...]]) -> Arch:
    """The :class:`Arch` of a state dict (``{key: shape}``) in ``layout``."""
    blocks = _blocks(layout, shapes)
    stages = sorted(blocks)
    if stages != list(range(len(stages))):
        raise ValueError(f"the checkpoint's residual stages are {[s + 1 for s in stages]}: some stage is missing")
    stage_sizes = tuple(blocks[s] for s in stages)
    bottleneck = torch_name(layout, ("stage0_block0", "conv3")) + ".weight" in shapes
    stem = shapes[torch_name(layout, ("stem_conv",)) + ".weight"]
    head = shapes[torch_name(layout, ("head",)) + ".weight"]
    if len(stem) != 4 or len(head) != 2:
        raise ValueError(f"stem conv weight {tuple(stem)} / head weight {tuple(head)}: expected 4-D and 2-D tensors")
    shortcuts = frozenset(
        (s, b)
        for s, n in enumerate(stage_sizes)
        for b in range(n)
        if torch_name(layout, (f"stage{s}_block{b}", "shortcut_conv")) + ".weight" in shapes
    )
    plif = layout == "spikingjelly" and torch_name(layout, ("stem_act",)) + ".w" in shapes
    psn = dict(psn="", psn_order=0, psn_time_steps=0)
    sn1 = torch_name(layout, ("stem_act",)) + "." if layout == "spikingjelly" else None
    if sn1 is not None and sn1 + "weight" in shapes:
        weight = tuple(shapes[sn1 + "weight"])
        if len(weight) == 1:
            psn = dict(psn="sliding", psn_order=int(weight[0]), psn_time_steps=0)
        elif len(weight) == 2 and weight[0] == weight[1]:
            # A MaskedPSN's order k is in its mask0 buffer's values: convert.from_torch reads it.
            psn = dict(psn="masked" if sn1 + "mask0" in shapes else "full", psn_order=0, psn_time_steps=int(weight[0]))
        else:
            raise ValueError(f"tensor {sn1}weight has shape {weight}: a PSN weight is [T, T] or a SlidingPSN's [k]")
    return Arch(stage_sizes, bottleneck, int(stem[0]), int(stem[1]), int(stem[2]), int(head[0]), shortcuts, plif, **psn)


def arch_from_snnjax(shapes: Mapping[tuple[str, ...], tuple[int, ...]], model: Mapping | None = None) -> Arch:
    """The :class:`Arch` of snnjax ResNet variables given as ``{path: shape}`` (paths without the
    collection, e.g. ``("stem_conv", "kernel")``).

    PSN neurons (a ``stem_act/weight``) are ``"sliding"`` when their weight is 1-D; a ``T x T`` weight is
    a full PSN unless ``model`` (the run's ``config.model``) says ``psn_variant="masked"``, whose
    ``psn_order`` and ``psn_lambda`` it then gives."""
    blocks: dict[int, int] = {}
    for path in shapes:
        m = re.fullmatch(r"stage(\d+)_block(\d+)", path[0])
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            blocks[s] = max(blocks.get(s, 0), b + 1)
    if ("stem_conv", "kernel") not in shapes or ("head", "kernel") not in shapes or not blocks:
        raise ValueError("these variables are not an snnjax ResNet (no stem_conv/kernel, head/kernel or stage blocks)")
    stage_sizes = tuple(blocks[s] for s in sorted(blocks))
    stem, head = shapes[("stem_conv", "kernel")], shapes[("head", "kernel")]
    return Arch(
        stage_sizes=stage_sizes,
        bottleneck=("stage0_block0", "conv3", "kernel") in shapes,
        width=int(stem[3]),
        in_channels=int(stem[2]),
        stem_kernel=int(stem[0]),
        num_classes=int(head[1]),
        shortcuts=frozenset(
            (s, b)
            for s, n in enumerate(stage_sizes)
            for b in range(n)
            if (f"stage{s}_block{b}", "shortcut_conv", "kernel") in shapes
        ),
        plif=("stem_act", "decay_logit") in shapes,
        **_psn_from_snnjax(shapes, model),
    )


def _psn_from_snnjax(shapes: Mapping[tuple[str, ...], tuple[int, ...]], model: Mapping | None) -> dict:
    weight = shapes.get(("stem_act", "weight"))
    if weight is None:
        return {}
    if len(weight) == 1:
        return dict(psn="sliding", psn_order=int(weight[0]))
    model = model or {}
    if model.get("neuron") == "psn" and model.get("psn_variant") == "masked":
        return dict(
            psn="masked",
            psn_order=int(model.get("psn_order", 2)),
            psn_time_steps=int(weight[0]),
            psn_lambda=float(model.get("psn_lambda", 1.0)),
        )
    return dict(psn="full", psn_time_steps=int(weight[0]))
