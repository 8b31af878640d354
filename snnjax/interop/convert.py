"""Tensor conversion between a PyTorch ResNet ``state_dict`` and snnjax ResNet variables (NumPy only).

Per module kind (torch ``prefix.name`` <-> snnjax ``collection/path/name``)::

    conv   weight [O, I, kh, kw]  <->  params/.../kernel [kh, kw, I, O]         (OIHW -> HWIO)
    bn     weight, bias           <->  params/.../scale, bias
           running_mean, _var     <->  batch_stats/.../mean, var                 (copied as they are)
           num_batches_tracked     ->  left out (snnjax's BN has no step counter)
    fc     weight [out, in], bias <->  params/head/kernel [in, out], bias        (transposed)
    plif   w (SpikingJelly)       <->  params/.../decay_logit = -w               (decay = 1 - sigmoid(w) = sigmoid(-w))
    psn    weight [T, T] | [k]    <->  params/.../weight [T, T] | [k]             (PSN, MaskedPSN | SlidingPSN; copied)
           bias [T, 1] | []       <->  params/.../bias [T] | []                   (reshaped)
           _lambda_, mask0, mask1  ->  left out (MaskedPSN's buffers: k and lambda are config.model keys;
                                        an export writes them from config.model.psn_order / psn_lambda)

Values are moved, never recomputed (transposes and a sign flip), so a round trip is bit-exact.
PyTorch's ``running_var`` averages the *unbiased* batch variance and Flax's the biased one; both use
the stored value as is at inference, so it is copied unchanged (the two differ only in how they keep
updating it when training resumes: by a factor n / (n - 1), n = examples x pixels per batch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from snnjax.interop import layouts

Variables = dict[str, Any]

_BN_SNNJAX = {
    "weight": ("params", "scale"),
    "bias": ("params", "bias"),
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
}


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """Every torch tensor of a conversion: where it went, or that it was left out.

    Attributes:
      layout: the torch layout (:data:`layouts.LAYOUTS`).
      arch: the network.
      mapped: ``(torch key, snnjax path, how)`` per mapped tensor, in network order.
      left_out: torch keys that no snnjax variable holds (BN ``num_batches_tracked``, extra keys).
      notes: what the user should know about this network (stem, layout caveats).
    """

    layout: str
    arch: layouts.Arch
    mapped: tuple[tuple[str, str, str], ...]
    left_out: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def to_text(self) -> str:
        """An aligned table ``torch key -> snnjax path (how)``, the left-out keys and the notes."""
        width = max([len(t) for t, _, _ in self.mapped] + [len(t) for t in self.left_out], default=0)
        lines = [
            f"# {self.layout} -> snnjax {self.arch.name} (width {self.arch.width}): {len(self.mapped)} tensors "
            f"mapped, {len(self.left_out)} left out"
        ]
        lines += [f"{t:<{width}}  ->  {s}  [{how}]" for t, s, how in self.mapped]
        lines += [f"{t:<{width}}  --  left out" for t in self.left_out]
        lines += [f"# note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Converted:
    """snnjax ``variables`` (``params``, ``batch_stats``: nested dicts of NumPy arrays), the report,
    and the left-out torch tensors (``extras``, e.g. to write them back on export)."""

    variables: Variables
    report: ConversionReport
    extras: dict[str, np.ndarray]


def _set(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _get(tree: Mapping, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _need(state: Mapping[str, np.ndarray], key: str, ndim: int, layout: str) -> np.ndarray:
    if key not in state:
        raise ValueError(
            f"the {layout} checkpoint has no tensor {key!r} (the network its other keys describe needs it)"
        )
    value = np.asarray(state[key])
    if value.ndim != ndim:
        raise ValueError(f"tensor {key!r} has shape {tuple(value.shape)}; a {ndim}-D tensor was expected there")
    return value


def notes_for(layout: str, arch: layouts.Arch) -> tuple[str, ...]:
    """Caveats of mapping ``arch`` in ``layout`` (shown in the report)."""
    notes = []
    if arch.stem_kernel == 7:
        notes.append("7x7 stride-2 stem (padding 3) + 3x3 stride-2 max-pool (padding 1): snnjax stem='imagenet'")
    elif layout in ("torchvision", "spikingjelly"):
        notes.append("3x3 stem: assumes the CIFAR variant (conv1 3x3 stride 1 padding 1, maxpool = Identity)")
    if layout == "idsnn_snn":
        notes.append("S_ResNet stem conv pads 3 (36x36 maps on CIFAR): snnjax stem_padding=3")
    if arch.psn:
        what = {"full": "PSN", "masked": "MaskedPSN", "sliding": "SlidingPSN"}[arch.psn]
        keys = f"psn_variant={arch.psn!r}"
        if arch.psn != "full":
            keys += f", psn_order={arch.psn_order}"
        if arch.psn == "masked":
            keys += f", psn_lambda={arch.psn_lambda:g}"
        steps = f", time_steps={arch.psn_time_steps}" if arch.psn_time_steps else ""
        notes.append(
            f"{what} neurons: snnjax neuron='psn', {keys}{steps}; snnjax fires at H > 0, SpikingJelly at H >= 0"
        )
    if layout == "pycls" and arch.bottleneck:
        notes.append(
            "pycls bottleneck: snnjax strides the 3x3 conv (RESNET.STRIDE_1X1=False); a STRIDE_1X1=True "
            "network maps weight for weight but computes differently"
        )
    notes.append("BN running_var copied as is (PyTorch averages the unbiased batch variance, Flax the biased one)")
    return tuple(notes)


def from_torch(state: Mapping[str, np.ndarray], layout: str) -> Converted:
    """snnjax ResNet variables of a torch ``state`` (``{key: array}``) in ``layout``."""
    arch = layouts.arch_from_torch(layout, {k: tuple(np.shape(v)) for k, v in state.items()})
    if arch.psn == "masked":
        arch = _masked_psn_arch(state, arch)
    variables: Variables = {"params": {}, "batch_stats": {}}
    mapped: list[tuple[str, str, str]] = []
    used: set[str] = set()
    for path, kind in layouts.modules(arch):
        prefix = layouts.torch_name(layout, path, arch.bottleneck)
        if kind == "conv":
            key = f"{prefix}.weight"
            _set(variables["params"], path + ("kernel",), _need(state, key, 4, layout).transpose(2, 3, 1, 0))
            mapped.append((key, "/".join(("params",) + path + ("kernel",)), "OIHW -> HWIO"))
            used.add(key)
        elif kind == "bn":
            for name, (collection, leaf) in _BN_SNNJAX.items():
                key = f"{prefix}.{name}"
                _set(variables[collection], path + (leaf,), _need(state, key, 1, layout))
                mapped.append((key, "/".join((collection,) + path + (leaf,)), "copied"))
                used.add(key)
        elif kind == "fc":
            key = f"{prefix}.weight"
            _set(variables["params"], path + ("kernel",), _need(state, key, 2, layout).T)
            mapped.append((key, f"params/{'/'.join(path)}/kernel", "transposed"))
            key_b = f"{prefix}.bias"
            _set(variables["params"], path + ("bias",), _need(state, key_b, 1, layout))
            mapped.append((key_b, f"params/{'/'.join(path)}/bias", "copied"))
            used.update((key, key_b))
        elif kind == "psn":
            sliding = arch.psn == "sliding"
            key, key_b = f"{prefix}.weight", f"{prefix}.bias"
            _set(variables["params"], path + ("weight",), _need(state, key, 1 if sliding else 2, layout))
            mapped.append((key, f"params/{'/'.join(path)}/weight", "copied"))
            bias = _need(state, key_b, 0 if sliding else 2, layout)
            _set(variables["params"], path + ("bias",), bias if sliding else bias.reshape(-1))
            mapped.append((key_b, f"params/{'/'.join(path)}/bias", "copied" if sliding else "[T, 1] -> [T]"))
            used.update((key, key_b))
        else:  # plif
            key = f"{prefix}.w"
            _set(variables["params"], path + ("decay_logit",), -_need(state, key, 0, layout))
            mapped.append((key, f"params/{'/'.join(path)}/decay_logit", "negated"))
            used.add(key)
    extras = {k: np.asarray(v) for k, v in state.items() if k not in used}
    report = ConversionReport(layout, arch, tuple(mapped), tuple(extras), notes_for(layout, arch))
    return Converted(variables, report, extras)


def _masked_psn_arch(state: Mapping[str, np.ndarray], arch: layouts.Arch) -> layouts.Arch:
    """``arch`` with the order ``k`` and ``lambda`` of a MaskedPSN network, read from its stem neuron's
    ``mask0`` (``k`` ones in its first column, fewer when ``k > T``: the same mask) and ``_lambda_``;
    every neuron layer must agree, since snnjax has one ``psn_order`` and ``psn_lambda`` per model."""
    orders, lambdas = set(), set()
    for path, kind in layouts.modules(arch):
        if kind != "psn":
            continue
        prefix = layouts.torch_name("spikingjelly", path, arch.bottleneck)
        mask = np.asarray(_need(state, f"{prefix}.mask0", 2, "spikingjelly"))
        orders.add(int(round(float(mask[:, 0].sum()))))
        lambdas.add(float(np.asarray(_need(state, f"{prefix}._lambda_", 0, "spikingjelly"))))
    if len(orders) != 1 or len(lambdas) != 1:
        raise ValueError(
            f"the MaskedPSN layers have orders {sorted(orders)} and lambdas {sorted(lambdas)}; snnjax's masked "
            "PSN has one psn_order and one psn_lambda per model"
        )
    return dataclasses.replace(arch, psn_order=orders.pop(), psn_lambda=lambdas.pop())


def _masked_psn_buffers(arch: layouts.Arch) -> dict[str, np.ndarray]:
    """MaskedPSN's buffers (after the module prefix) for ``arch``: SpikingJelly's ``_lambda_`` (float32 scalar),
    ``mask0`` (the band of width k) and ``mask1`` (ones), float32 ``[T, T]``."""
    t, k = arch.psn_time_steps, arch.psn_order
    ones = np.ones((t, t), np.float32)
    return {
        "_lambda_": np.asarray(arch.psn_lambda, np.float32),
        "mask0": np.tril(ones) * np.triu(ones, -(k - 1)),
        "mask1": ones,
    }


def _flat_shapes(variables: Mapping) -> dict[tuple[str, ...], tuple[int, ...]]:
    out: dict[tuple[str, ...], tuple[int, ...]] = {}

    def walk(tree, prefix):
        for key, value in tree.items():
            if isinstance(value, Mapping):
                walk(value, prefix + (str(key),))
            else:
                out[prefix + (str(key),)] = tuple(np.shape(value))

    walk(variables.get("params", {}), ())
    return out


def to_torch(
    variables: Mapping,
    layout: str,
    extras: Mapping[str, np.ndarray] | None = None,
    model: Mapping | None = None,
) -> tuple[dict[str, np.ndarray], layouts.Arch]:
    """The torch ``state_dict`` (``{key: array}``, module order) of snnjax ResNet ``variables``.

    BN ``num_batches_tracked`` counters come from ``extras`` when it has them (a round trip), else 0;
    MaskedPSN's buffers likewise, else from ``model`` (the run's ``config.model``: ``psn_order``,
    ``psn_lambda``; without it a ``T x T`` PSN is written as SpikingJelly's full ``PSN``); other
    ``extras`` keys are written back as they are.
    """
    extras = dict(extras or {})
    params, stats = variables["params"], variables.get("batch_stats", {})
    arch = layouts.arch_from_snnjax(_flat_shapes(variables), model)
    if arch.plif and layout != "spikingjelly":
        raise ValueError(f"the {layout} layout has no learnable neuron decay; export PLIF models as spikingjelly")
    if arch.psn and layout != "spikingjelly":
        raise ValueError(f"the {layout} layout has no parallel spiking neurons; export PSN models as spikingjelly")
    out: dict[str, np.ndarray] = {}
    for path, kind in layouts.modules(arch):
        prefix = layouts.torch_name(layout, path, arch.bottleneck)
        if kind == "conv":
            out[f"{prefix}.weight"] = np.ascontiguousarray(
                np.asarray(_get(params, path + ("kernel",))).transpose(3, 2, 0, 1)
            )
        elif kind == "bn":
            for name, (collection, leaf) in _BN_SNNJAX.items():
                source = params if collection == "params" else stats
                out[f"{prefix}.{name}"] = np.asarray(_get(source, path + (leaf,)))
            counter = f"{prefix}.num_batches_tracked"
            out[counter] = np.asarray(extras.pop(counter, np.zeros((), np.int64)))
        elif kind == "fc":
            out[f"{prefix}.weight"] = np.ascontiguousarray(np.asarray(_get(params, path + ("kernel",))).T)
            out[f"{prefix}.bias"] = np.asarray(_get(params, path + ("bias",)))
        elif kind == "psn":
            out[f"{prefix}.weight"] = np.asarray(_get(params, path + ("weight",)))
            bias = np.asarray(_get(params, path + ("bias",)))
            out[f"{prefix}.bias"] = bias if arch.psn == "sliding" else bias.reshape(-1, 1)
            made = _masked_psn_buffers(arch) if arch.psn == "masked" else {}
            for name in layouts.PSN_BUFFERS:  # a round trip's own buffers first, in SpikingJelly's order
                key = f"{prefix}.{name}"
                if key in extras:
                    out[key] = np.asarray(extras.pop(key))
                elif name in made:
                    out[key] = made[name]
        else:  # plif
            out[f"{prefix}.w"] = -np.asarray(_get(params, path + ("decay_logit",)))
    out.update(extras)
    return out, arch
