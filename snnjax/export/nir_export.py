"""Export a trained Spiking ResNet to NIR (Neuromorphic Intermediate Representation, ``nir`` 1.0).

The exported graph, one node per layer (names are the Flax module paths with ``.`` for ``/``)::

    input (C, H, W) -> stem_conv -> stem_act -> stage0_block0.conv1 -> stage0_block0.act1 -> ...
        -> pool (AvgPool2d over the whole map) -> flatten -> head (Affine) -> readout (I) -> output

**Layout.** NIR is channels-first like PyTorch: tensors ``(C, H, W)`` per example, conv weights
``(C_out, C_in, k_h, k_w)`` (Flax's ``[k_h, k_w, C_in, C_out]`` transposed), dense weights
``(out, in)``. Convolutions are cross-correlations with symmetric zero padding in both.

**BatchNorm** (inference mode, running statistics) is folded into the preceding bias-free conv::

    s = gamma / sqrt(var + eps);   W' = W * s (per output channel);   b' = beta - mean * s

**Neurons.** snnjax's discrete neuron (hard reset to 0)::

    u[t] = decay * u[t-1] * (1 - s[t-1]) + I[t];    s[t] = 1 if u[t] > v_th else 0

NIR's LIF is continuous, ``tau dv/dt = (v_leak - v) + r I``, spike when ``v > v_threshold``, then
``v = v_reset``. One forward-Euler step of size ``dt`` gives
``v[t] = (1 - dt/tau) v[t-1] + (dt/tau) r I[t]``; with

    tau = dt / (1 - decay),   r = tau / dt = 1 / (1 - decay),   v_leak = 0,   v_reset = 0

this is exactly snnjax's update (the reset to ``v_reset = 0`` right after a spike is the same as
multiplying the next step's ``u[t-1]`` by ``1 - s[t-1]``). ``decay = 1`` (IF) has no finite
``tau``: it is exported as NIR ``IF`` (``dv/dt = r I``) with ``r = 1 / dt``. The graph's metadata
records ``dt`` (default 1, i.e. one time step per unit). Limits: the mapping holds for the Euler
discretisation a NIR consumer must use with this ``dt``; an exact-exponential integrator would
need ``tau = -dt / ln(decay)`` instead. Soft reset (subtract ``v_th``) has no NIR form and is
refused. PLIF exports its learned ``decay = sigmoid(w)`` per layer. PSN (parallel spiking neurons) is
refused: its ``H = W X`` mixes all time steps at once, and no NIR 1.0 node does. Parameters are per neuron,
shape ``(C, H, W)``.

**Time.** Every node is evaluated once per time step ``t = 0..T-1`` in topological order, edges
carry values within the same step (no delay), and several edges into one node are summed: this is
how residual additions appear (``conv2`` and the shortcut both feed ``act_out``). The static image
is fed to ``input`` at every step (direct encoding). The readout is NIR ``I`` (an integrator,
``dv/dt = r I``) with ``r = 1 / (T dt)``: after ``T`` steps its state is the mean over time of the
head's outputs, which equals snnjax's logits (the head is affine and the model averages over time
before it; average pooling is linear too).

Only the ``snnjax.models.resnet.ResNet`` family with the CIFAR stem and standard residual adds is
supported (NIR 1.0 has no max-pool for the ImageNet stem and no spike-element-wise SEW functions).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import numpy as np

from snnjax import layers
from snnjax.models.resnet import Bottleneck, ResNet

BN_EPSILON = 1e-5  # the epsilon snnjax.models.resnet gives every BatchNorm
NAME_SEPARATOR = "."  # NIR node names are HDF5 group names: no "/"


def _nir():
    try:
        import nir
    except ImportError as err:  # optional dependency
        raise ImportError(
            "NIR export needs the `nir` package: pip install 'nir>=1.0.8' (or the snnjax[nir] extra)"
        ) from err
    return nir


@dataclasses.dataclass(frozen=True)
class NeuronSpec:
    """The per-layer neuron of the exported model."""

    decay: float
    v_threshold: float


def _folded_conv(kernel: np.ndarray, scale, bias, mean, var) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode BN folded into a bias-free conv (:func:`snnjax.layers.fold_batch_norm`, in float64),
    as NIR/PyTorch ``(weight [C_out, C_in, k_h, k_w], bias [C_out])`` float32."""
    f64 = lambda v: np.asarray(v, np.float64)  # noqa: E731
    weight, folded_bias = layers.fold_batch_norm(
        f64(kernel), None, f64(scale), f64(bias), f64(mean), f64(var), BN_EPSILON
    )
    return weight.transpose(3, 2, 0, 1).astype(np.float32), folded_bias.astype(np.float32)


def neuron_node(spec: NeuronSpec, shape: tuple[int, ...], dt: float = 1.0):
    """NIR ``LIF`` (``decay < 1``) or ``IF`` (``decay == 1``) reproducing snnjax's Euler step (see module doc)."""
    nir = _nir()
    if not 0.0 <= spec.decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1] for NIR export, got {spec.decay}")
    full = lambda value: np.full(shape, value, np.float32)  # noqa: E731
    if spec.decay == 1.0:
        return nir.IF(r=full(1.0 / dt), v_threshold=full(spec.v_threshold), v_reset=full(0.0))
    tau = dt / (1.0 - spec.decay)
    return nir.LIF(
        tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(spec.v_threshold), v_reset=full(0.0)
    )


def _neuron_template(model: ResNet) -> layers.SpikingNeuron:
    neuron = model.activation()
    if isinstance(neuron, layers.ParallelSpikingNeuron):
        raise NotImplementedError(
            "PSN neurons (config.model.neuron='psn') cannot be exported: NIR 1.0 has no node that mixes "
            "time steps (H = W X over all T steps); export a lif | if | plif model"
        )
    if not isinstance(neuron, layers.SpikingNeuron):
        raise ValueError(
            f"NIR export needs a spiking model, but the activation is {type(neuron).__name__}; "
            "export the SNN (config.model.neuron = lif | if | plif), not the ANN teacher"
        )
    if neuron.reset != "hard":
        raise NotImplementedError(
            f"reset={neuron.reset!r} cannot be exported: NIR's LIF/IF reset the membrane "
            "to v_reset; use reset='hard' (the IDSNN default)"
        )
    return neuron


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, ResNet):
        raise TypeError(
            f"NIR export supports snnjax.models.resnet.ResNet models, got {type(model).__name__} (the hybrid "
            "VGG/ResNet neurons reset by subtraction, which NIR 1.0's IF/LIF cannot express)"
        )
    if model.stem != "cifar":
        raise NotImplementedError(
            f"stem={model.stem!r} cannot be exported: NIR 1.0 has no max-pool; use the 'cifar' stem"
        )
    if model.connect != "standard":
        raise NotImplementedError(
            f"connect={model.connect!r} (SEW ResNet) cannot be exported: NIR 1.0 has no "
            "spike-element-wise nodes; use standard residual blocks"
        )


class _GraphBuilder:
    """Nodes, edges and the per-example ``(C, H, W)`` shape each node emits."""

    def __init__(self, params: Mapping, stats: Mapping, neuron: layers.SpikingNeuron, dt: float):
        self.params, self.stats, self.neuron, self.dt = params, stats, neuron, dt
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.shapes: dict[str, tuple[int, ...]] = {}

    def add(self, name: str, node: Any, shape: tuple[int, ...], *sources: str) -> str:
        self.nodes[name] = node
        self.shapes[name] = shape
        self.edges.extend((src, name) for src in sources)
        return name

    def conv(self, scope: tuple[str, ...], conv: str, bn: str, stride: int, padding: int, source: str) -> str:
        nir = _nir()
        p, s = self._sub(self.params, scope), self._sub(self.stats, scope)
        kernel = np.asarray(p[conv]["kernel"])
        weight, bias = _folded_conv(kernel, p[bn]["scale"], p[bn]["bias"], s[bn]["mean"], s[bn]["var"])
        _, h, w = self.shapes[source]
        node = nir.Conv2d(
            input_shape=(h, w), weight=weight, stride=stride, padding=padding, dilation=1, groups=1, bias=bias
        )
        shape = tuple(int(d) for d in node.output_type["output"])
        return self.add(NAME_SEPARATOR.join(scope + (conv,)), node, shape, source)

    def spiking(self, scope: tuple[str, ...], act: str, *sources: str) -> str:
        decay = float(self.neuron.decay)
        if self.neuron.learnable_decay:  # PLIF: the learned decay of this layer
            logit = float(np.asarray(self._sub(self.params, scope)[act]["decay_logit"]))
            decay = 1.0 / (1.0 + math.exp(-logit))
        shape = self.shapes[sources[0]]
        node = neuron_node(NeuronSpec(decay, float(self.neuron.v_threshold)), shape, self.dt)
        return self.add(NAME_SEPARATOR.join(scope + (act,)), node, shape, *sources)

    @staticmethod
    def _sub(tree: Mapping, scope: tuple[str, ...]) -> Mapping:
        for key in scope:
            tree = tree[key]
        return tree


def _block(g: _GraphBuilder, name: str, bottleneck: bool, stride: int, source: str) -> str:
    scope = (name,)
    if bottleneck:
        y = g.spiking(scope, "act1", g.conv(scope, "conv1", "bn1", 1, 0, source))
        y = g.spiking(scope, "act2", g.conv(scope, "conv2", "bn2", stride, 1, y))
        y = g.conv(scope, "conv3", "bn3", 1, 0, y)
    else:
        y = g.spiking(scope, "act1", g.conv(scope, "conv1", "bn1", stride, 1, source))
        y = g.conv(scope, "conv2", "bn2", 1, 1, y)
    shortcut = source
    if "shortcut_conv" in g.params[name]:
        shortcut = g.conv(scope, "shortcut_conv", "shortcut_bn", stride, 0, source)
    return g.spiking(scope, "act_out", y, shortcut)  # two edges in: the residual sum


def export_resnet(
    model: nn.Module, variables: Mapping[str, Any], input_shape: tuple[int, int, int], *, dt: float = 1.0
):
    """The NIR graph of a trained Spiking ResNet.

    Args:
      model: a ``snnjax.models.resnet.ResNet`` with a spiking activation (``build_model`` of an SNN config).
      variables: ``{"params": ..., "batch_stats": ...}`` (e.g. ``state.variables``).
      input_shape: one example's image ``(H, W, C)`` (snnjax layout; the graph's input is ``(C, H, W)``).
      dt: the Euler step the NIR time constants are written for (see the module docstring).

    Returns:
      a ``nir.NIRGraph`` whose metadata records ``dt``, ``time_steps``, the encoding and the readout.
    """
    nir = _nir()
    _check_model(model)
    neuron = _neuron_template(model)
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be one example's (H, W, C), got {input_shape}")
    params = _host(variables["params"])
    stats = _host(variables.get("batch_stats", {}))
    g = _GraphBuilder(params, stats, neuron, dt)
    h, w, c = (int(d) for d in input_shape)
    x = g.add("input", nir.Input(input_type={"input": np.array([c, h, w])}), (c, h, w))
    x = g.spiking((), "stem_act", g.conv((), "stem_conv", "stem_bn", 1, int(model.stem_padding), x))
    bottleneck = model.block_cls is Bottleneck
    for s, num_blocks in enumerate(model.stage_sizes):
        for b in range(num_blocks):
            x = _block(g, f"stage{s}_block{b}", bottleneck, 2 if s > 0 and b == 0 else 1, x)
    channels, fh, fw = g.shapes[x]
    x = g.add(
        "pool",
        nir.AvgPool2d(kernel_size=np.array([fh, fw]), stride=np.array([fh, fw]), padding=np.array([0, 0])),
        (channels, 1, 1),
        x,
    )
    x = g.add("flatten", nir.Flatten(input_type={"input": np.array([channels, 1, 1])}, start_dim=0), (channels,), x)
    kernel, bias = np.asarray(params["head"]["kernel"], np.float32), np.asarray(params["head"]["bias"], np.float32)
    x = g.add("head", nir.Affine(weight=kernel.T.copy(), bias=bias), (kernel.shape[1],), x)
    steps = int(model.time_steps)
    x = g.add("readout", nir.I(r=np.full(kernel.shape[1], 1.0 / (steps * dt), np.float32)), (kernel.shape[1],), x)
    g.add("output", nir.Output(output_type={"output": np.array([kernel.shape[1]])}), (kernel.shape[1],), x)
    metadata = {
        "source": "snnjax",
        "dt": float(dt),
        "time_steps": steps,
        "encoding": "direct",
        "layout": "CHW",
        "readout": "state of 'readout' after time_steps steps = logits",
        "edge_semantics": "same-step, summed",
    }
    return nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata=metadata)


def write_nir(
    path: str | os.PathLike,
    model: nn.Module,
    variables: Mapping[str, Any],
    input_shape: tuple[int, int, int],
    *,
    dt: float = 1.0,
):
    """:func:`export_resnet` and ``nir.write`` to ``path`` (conventionally ``*.nir``); returns the graph."""
    nir = _nir()
    graph = export_resnet(model, variables, input_shape, dt=dt)
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    nir.write(path, graph)
    return graph


def _host(tree: Any) -> Any:
    """Nested mappings of NumPy arrays (device arrays fetched, FrozenDicts unwrapped)."""
    if isinstance(tree, Mapping):
        return {k: _host(v) for k, v in tree.items()}
    return np.asarray(tree)
