"""PyTorch checkpoints <-> snnjax ResNet variables.

    from snnjax.interop import torch as tio
    state = tio.load_state_dict("resnet34.pth")               # {key: np.ndarray}
    converted = tio.from_torch(state)                         # layout detected from the key names
    converted.variables                                       # {"params": ..., "batch_stats": ...}
    print(converted.report.to_text())                         # every tensor mapped / left out
    tio.save_state_dict(tio.to_torch(variables, "spikingjelly"), "snn.pth")

Layouts (:mod:`snnjax.interop.layouts`): torchvision ``resnet18/34/50/101``, SpikingJelly's
``spiking_resnet`` zoo, the official IDSNN ``models/ResNet.py`` and ``models/S_ResNet.py`` and pycls
ResNets. ``torch`` (the ``snnjax[torch]`` extra) is imported only to read or write ``.pth``/``.pt``
files; ``.safetensors`` files need only the ``safetensors`` package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from snnjax.interop import convert, layouts
from snnjax.interop.convert import ConversionReport, Converted

__all__ = [
    "ConversionReport",
    "Converted",
    "from_torch",
    "is_torch_file",
    "load_state_dict",
    "model_section",
    "save_state_dict",
    "to_torch",
]

SUFFIXES = (".pth", ".pt", ".pyth", ".bin", ".ckpt", ".safetensors")  # .pyth: pycls
# Keys under which training scripts nest the state dict (pycls: "model_state"; Lightning: "state_dict").
_WRAPPERS = ("state_dict", "model_state", "model_state_dict", "model", "net", "module")
# Prefixes added by DataParallel/DistributedDataParallel and torch.compile.
_PREFIXES = ("module.", "_orig_mod.")
_INSTALL = "pip install 'snnjax[torch]'"


def is_torch_file(path: str) -> bool:
    """Whether ``path`` names a PyTorch weights file (by suffix: .pth .pt .pyth .bin .ckpt .safetensors)."""
    return bool(path) and str(path).lower().endswith(SUFFIXES)


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(f"reading or writing PyTorch .pth files needs torch. Fix: {_INSTALL}") from None
    return torch


def _safetensors_numpy():
    try:
        from safetensors import numpy as st_numpy
    except ImportError:
        raise ImportError(f"reading or writing .safetensors files needs safetensors. Fix: {_INSTALL}") from None
    return st_numpy


def _is_tensor_map(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(hasattr(v, "shape") for v in obj.values())


def _unwrap(obj: Any, path: str) -> Mapping:
    """The state dict inside a training checkpoint (``{"model_state": {...}, "epoch": ...}`` etc.)."""
    for _ in range(3):
        if _is_tensor_map(obj):
            return obj
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    what = f"a dict with keys {list(obj)[:6]}" if isinstance(obj, Mapping) else type(obj).__name__
    raise ValueError(f"{path} holds {what}, not a state_dict of tensors. Fix: save model.state_dict() with torch.save")


def _strip_prefixes(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _to_numpy(tensor: Any) -> np.ndarray:
    torch = _torch()
    t = tensor.detach().cpu()
    if t.is_floating_point() and t.dtype != torch.float32:
        t = t.to(torch.float32)  # bfloat16/float16/float64 checkpoints are read as float32
    return t.numpy()


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """``{key: array}`` of a ``.pth``/``.pt`` file (read with ``weights_only=True``) or a ``.safetensors``
    file; a checkpoint that nests the state dict (``state_dict``, ``model_state``, ...) and the
    ``module.`` prefix of DataParallel are unwrapped. Any unreadable file raises a one-line error."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file. Fix: pass the path of a PyTorch .pth/.pt or .safetensors file")
    if path.lower().endswith(".safetensors"):
        st_numpy = _safetensors_numpy()
        try:
            return _strip_prefixes(dict(st_numpy.load_file(path)))
        except Exception as err:  # the library raises several types for a damaged file
            raise ValueError(
                f"{path} is not a readable safetensors file ({_first_line(err)}). Fix: re-save it"
            ) from None
    torch = _torch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle errors, disallowed globals: one message for all
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint ({type(err).__name__}: {_first_line(err)}). "
            "Fix: pass a complete file written by torch.save(model.state_dict(), path)"
        ) from None
    state = _unwrap(obj, path)
    return _strip_prefixes({str(k): _to_numpy(v) for k, v in state.items()})


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def save_state_dict(state: Mapping[str, np.ndarray], path: str) -> None:
    """Write ``{key: array}`` as a torch ``state_dict`` (``.pth``/``.pt``) or a ``.safetensors`` file."""
    path = os.fspath(path)
    if path.lower().endswith(".safetensors"):
        _safetensors_numpy().save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, path)
        return
    torch = _torch()
    torch.save({k: torch.from_numpy(np.array(v, copy=True)) for k, v in state.items()}, path)


def detect_layout(keys, fmt: str = "auto", source: str = "the checkpoint") -> str:
    """The layout of ``keys`` for ``fmt``; a one-line error listing the layouts tried when none fits."""
    layout = layouts.detect(keys, fmt)
    if layout is None:
        keys = list(keys)
        tried = "; ".join(f"{name} ({layouts.expected_keys(name)})" for name in layouts.tried(fmt))
        raise ValueError(
            f"{source}: no known ResNet layout fits its keys {keys[:4]}... Tried: {tried}. "
            f"Fix: pass a ResNet state_dict of one of these layouts (format one of {list(layouts.FORMATS)})"
        )
    return layout


def from_torch(state: Mapping[str, np.ndarray] | str, fmt: str = "auto") -> Converted:
    """snnjax ResNet variables of a torch state dict (or a file path), in format ``fmt`` (``"auto"``:
    detected from the key names)."""
    source = "the state dict"
    if isinstance(state, (str, os.PathLike)):
        source, state = os.fspath(state), load_state_dict(state)
    layout = detect_layout(state.keys(), fmt, source)
    return convert.from_torch(state, layout)


def to_torch(
    variables: Mapping,
    fmt: str = "torchvision",
    extras: Mapping[str, np.ndarray] | None = None,
    model: Mapping | None = None,
) -> dict:
    """The torch ``state_dict`` (``{key: np.ndarray}``) of snnjax ResNet ``variables`` in layout ``fmt``
    (``torchvision``, ``spikingjelly``, ``idsnn``, ``idsnn_snn`` or ``pycls``); ``model``: the run's
    ``config.model``, which a masked PSN needs (its order and lambda); see :func:`convert.to_torch`."""
    if fmt not in layouts.LAYOUTS:
        raise ValueError(f"unknown export layout {fmt!r}; choose one of {list(layouts.LAYOUTS)}")
    variables = {k: v for k, v in variables.items() if k in ("params", "batch_stats")}
    return convert.to_torch(variables, fmt, extras, model)[0]


def model_section(arch: layouts.Arch, layout: str, base=None):
    """A ``config.model`` section for ``arch``: ``base`` (default :func:`snnjax.models.model_config`) with
    ``name``, ``width``, ``stem`` and ``stem_padding`` taken from the checkpoint; for PSN neurons and a
    spiking ``base`` also ``neuron='psn'``, ``psn_variant``, ``psn_order``, ``psn_lambda`` and (full and
    masked PSN: their ``T x T`` weight fixes it) ``time_steps``. An ANN ``base`` keeps ``relu``: its
    tensors then have no place in the model, which :func:`snnjax.interop.source.check_shapes` reports."""
    from snnjax import models

    if arch.depth is None:
        raise ValueError(
            f"the checkpoint's ResNet has stages {list(arch.stage_sizes)} of "
            f"{'bottleneck' if arch.bottleneck else 'basic'} blocks; snnjax builds ResNet18/34 (basic) and 50/101 "
            "(bottleneck) with 4 stages. Fix: use a checkpoint of one of these depths"
        )
    section = models.model_config() if base is None else models.model_config(**base.to_dict())
    section.name = f"resnet{arch.depth}"
    if arch.psn and section.neuron != "relu":
        section.neuron, section.psn_variant = "psn", arch.psn
        if arch.psn_order:
            section.psn_order = arch.psn_order
        section.psn_lambda = float(arch.psn_lambda)
        if arch.psn_time_steps:
            section.time_steps = arch.psn_time_steps
    section.width = arch.width
    if arch.stem_kernel == 7:
        section.stem = section.stem if section.stem in ("imagenet", "imagenet_nopool") else "imagenet"
    elif arch.stem_kernel == 3:
        section.stem = "cifar"
        section.stem_padding = 3 if layout == "idsnn_snn" else 1
    else:
        raise ValueError(
            f"the checkpoint's stem conv is {arch.stem_kernel}x{arch.stem_kernel}; snnjax has 3x3 and 7x7 stems"
        )
    return section
