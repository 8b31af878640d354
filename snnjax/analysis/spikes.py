"""Per-layer spike statistics and operation counts from ONE forward pass, next to the logits.

:func:`forward_with_stats` runs ``model.apply(variables, x, train=False)`` once with a Flax method
interceptor that sees every ``SpikingNeuron``, ``nn.Conv`` and ``nn.Dense`` call:

* a spiking layer's output spikes ``[B*T, ...]`` give its exact spike count (an integer sum; the
  layer's own ``sow`` of the mean rate in ``spike_stats`` agrees with ``count / (B*T*neurons)``), its
  number of neurons per example per time step (``prod(shape[1:])``, static) and a small raster;
* a conv/dense layer's input gives its ANN MACs (static shapes) and, when the input is spikes,
  its exact synaptic operations (:mod:`snnjax.analysis.energy`).

Which inputs are spikes: a synaptic layer called before any spiking layer sees the analog input
(direct encoding: the stem conv); after one, a ``[B*T, ...]`` input is spikes (or SEW spike
counts) and a ``[B, ...]`` input is the head's time-pooled spike map, counted as if the spikes fed
the head directly (pooling is linear and folds into the head's weights): for snnjax ResNets, whose
head sees the mean over T and space of the last feature map (SEW: spikes + identity spikes),
``spikes = sum(x) * T * (neurons per step of the last spiking layer) / C_in``; for other models
(e.g. the hybrid VGG, whose head sees the sum over T of the last spiking layer) the spike count of
the last spiking layer.

Spiking layers are the modules whose class sets ``emits_spikes = True`` (:func:`spiking_types`:
``layers.SpikingNeuron``, the hybrid method's ``HybridNeuron``, ...), called as
``(x [B*T, ...], time_steps)``, or ``emits_spikes = "batch_major"`` (SNN2ANN's neuron), whose
output's first element is the spikes ``[B, T, ...]``.

Nothing here changes the model; ANN models (ReLU) give MACs and no spikes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from snnjax import epoch_clock, layers
from snnjax import neurons as neurons_lib
from snnjax.analysis import energy as energy_lib
from snnjax.models.resnet import ResNet

InputKind = Literal["analog", "spikes", "rates"]
RASTER_NEURONS = 32
_TRANSIENT = ("spike_stats", "intermediates")  # sown by init; applying them again would append


@dataclasses.dataclass(frozen=True)
class NeuronStats:
    """One spiking layer over a batch.

    Attributes:
      path: module path, e.g. ``"stage1_block0/act_out"``.
      shape: output shape per example per time step, e.g. ``(4, 4, 128)`` (H, W, C).
      spikes: spikes emitted over the whole batch and all ``time_steps``.
      num_examples: B.
      time_steps: T.
      raster: ``[T, K]`` uint8 spikes of K evenly spaced neurons of example 0 (or None).
    """

    path: str
    shape: tuple[int, ...]
    spikes: int
    num_examples: int
    time_steps: int
    raster: np.ndarray | None = None
    time_macs: int = 0  # MACs per example of the neurons' own mixing over time (PSN; 0 for LIF/IF/PLIF)

    @property
    def num_neurons(self) -> int:
        """Neurons per example per time step."""
        return math.prod(self.shape)

    @property
    def spikes_per_example(self) -> float:
        return self.spikes / self.num_examples

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per time step, in [0, 1]."""
        return self.spikes / (self.num_neurons * self.time_steps * self.num_examples)


@dataclasses.dataclass(frozen=True)
class SynapseStats:
    """One conv/dense layer over a batch.

    Attributes:
      path: module path, e.g. ``"stage1_block0/conv1"``.
      kind: ``"conv"`` or ``"dense"``.
      input_kind: ``"analog"`` (MACs), ``"spikes"`` or ``"rates"`` (SOPs), see the module docstring.
      macs: MACs of this layer for one example in the ANN twin (one pass).
      runs: passes per example in the model (T for a ``[B*T, ...]`` input, 1 for ``[B, ...]``).
      sops: synaptic operations over the whole batch (0 for analog inputs).
      num_examples: B.
    """

    path: str
    kind: str
    input_kind: InputKind
    macs: int
    runs: int
    sops: float
    num_examples: int

    @property
    def sops_per_example(self) -> float:
        return self.sops / self.num_examples

    @property
    def executed_macs(self) -> int:
        """MACs the model itself runs per example (analog inputs only; spikes cost SOPs)."""
        return self.macs * self.runs if self.input_kind == "analog" else 0


@dataclasses.dataclass(frozen=True)
class SpikeReport:
    """Per-layer statistics of one or more batches (layers in call order)."""

    neurons: tuple[NeuronStats, ...]
    synapses: tuple[SynapseStats, ...]
    num_examples: int
    time_steps: int

    def layer_stats(self) -> dict[str, dict[str, float]]:
        """``{path: {"firing_rate", "num_neurons", "spikes_per_example"}}`` for every spiking layer."""
        return {
            n.path: {
                "firing_rate": n.firing_rate,
                "num_neurons": n.num_neurons,
                "spikes_per_example": n.spikes_per_example,
            }
            for n in self.neurons
        }

    def firing_rates(self) -> dict[str, float]:
        return {n.path: n.firing_rate for n in self.neurons}

    @property
    def spikes_per_example(self) -> float:
        return sum(n.spikes for n in self.neurons) / self.num_examples

    @property
    def mean_firing_rate(self) -> float | None:
        """All spikes over all neuron-steps (neuron-weighted mean); None without spiking layers."""
        slots = sum(n.num_neurons for n in self.neurons) * self.time_steps
        return self.spikes_per_example / slots if slots else None

    @property
    def sops_per_example(self) -> float:
        return sum(s.sops for s in self.synapses) / self.num_examples

    @property
    def ann_macs_per_example(self) -> int:
        return sum(s.macs for s in self.synapses)

    @property
    def snn_macs_per_example(self) -> int:
        """Analog MACs per example: synaptic layers on analog inputs plus PSN neurons' mixing over time."""
        return sum(s.executed_macs for s in self.synapses) + sum(n.time_macs for n in self.neurons)

    def energy(self, energy_model: energy_lib.EnergyModel = energy_lib.EnergyModel()) -> energy_lib.EnergyEstimate:
        """Per-example energy of the SNN and of its ANN twin (see :mod:`snnjax.analysis.energy`)."""
        return energy_lib.estimate_energy(
            self.sops_per_example, self.snn_macs_per_example, self.ann_macs_per_example, energy_model
        )

    def merge(self, other: SpikeReport) -> SpikeReport:
        """Statistics of both batches together (same model; the raster of ``self`` is kept)."""
        if [n.path for n in self.neurons] != [n.path for n in other.neurons] or [s.path for s in self.synapses] != [
            s.path for s in other.synapses
        ]:
            raise ValueError("cannot merge spike reports of different models (layer paths differ)")
        b = self.num_examples + other.num_examples
        neurons = tuple(
            dataclasses.replace(n, spikes=n.spikes + o.spikes, num_examples=b)
            for n, o in zip(self.neurons, other.neurons)
        )
        synapses = tuple(
            dataclasses.replace(s, sops=s.sops + o.sops, num_examples=b) for s, o in zip(self.synapses, other.synapses)
        )
        return dataclasses.replace(self, neurons=neurons, synapses=synapses, num_examples=b)


# --------------------------------------------------------------------------------------------- probe


def spiking_types() -> tuple[type, ...]:
    """Module classes counted as spiking layers (``(x [B*T, ...], time_steps) -> spikes``): every
    loaded ``nn.Module`` subclass whose ``emits_spikes`` class attribute is True."""
    found, todo = [], [nn.Module]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__dict__.get("emits_spikes") is True:
            found.append(cls)
    return tuple(found) or (layers.SpikingNeuron,)


@dataclasses.dataclass
class _Trace:
    """Static facts gathered while tracing (shapes only; no arrays leave the trace this way)."""

    batch: int
    raster_neurons: int
    neurons: dict[str, tuple[tuple[int, ...], int]] = dataclasses.field(default_factory=dict)
    time_macs: dict[str, int] = dataclasses.field(default_factory=dict)  # per example, PSN layers only
    synapses: dict[str, tuple[str, InputKind, int, int]] = dataclasses.field(default_factory=dict)
    mean_pooled_head: bool = True
    last_neurons_per_step: int = 0
    last_time_steps: int = 1
    last_spikes: Any = None  # traced spike count of the most recent spiking layer (same trace only)
    epoch: float = 0.0  # the epoch fed to the variables (snnjax.epoch_clock): a ramped masked PSN's lambda


def _tuple(value, n: int) -> tuple[int, ...]:
    if value is None:
        return (1,) * n
    if isinstance(value, int):
        return (value,) * n
    return tuple(int(v) for v in value)


def _path(module: nn.Module) -> str:
    return "/".join(str(p) for p in module.path)


def _record_neuron(trace: _Trace, out: dict, module: nn.Module, spikes: jax.Array, time_steps: int) -> None:
    path = _path(module)
    shape = tuple(int(d) for d in spikes.shape[1:])
    trace.neurons[path] = (shape, int(time_steps))
    if isinstance(module, layers.ParallelSpikingNeuron):
        lam = float(module.lam)
        if module.lambda_epochs > 0:  # ramped (psn_lambda_epochs): the lambda of the epoch it was trained at
            lam = float(neurons_lib.ramped_psn_lambda(trace.epoch, module.lambda_epochs))
        per_neuron = energy_lib.psn_time_macs(module.variant, int(time_steps), int(module.order), lam)
        trace.time_macs[path] = per_neuron * math.prod(shape)
    trace.last_neurons_per_step = math.prod(shape)
    trace.last_time_steps = int(time_steps)
    flat = spikes.reshape(spikes.shape[0] // time_steps, time_steps, -1)
    picks = np.unique(np.linspace(0, flat.shape[-1] - 1, min(trace.raster_neurons, flat.shape[-1])).astype(int))
    count = jnp.sum(spikes.astype(jnp.int32))
    trace.last_spikes = count
    out[path] = {"spikes": count, "raster": flat[0][:, picks].astype(jnp.uint8)}


def _input_kind(trace: _Trace, leading: int, dense: bool) -> InputKind:
    if not trace.neurons:
        return "analog"
    if trace.last_time_steps > 1:
        return "rates" if leading == trace.batch else "spikes"
    # T = 1: the leading axis cannot tell; a ResNet's only dense layer is its pooled head.
    return "rates" if dense and trace.mean_pooled_head else "spikes"


def _record_conv(trace: _Trace, out: dict, module: nn.Conv, x: jax.Array, y: jax.Array) -> None:
    path = _path(module)
    spatial = x.ndim - 2
    kernel = _tuple(module.kernel_size, spatial)
    groups = int(module.feature_group_count)
    macs = energy_lib.conv_macs(y.shape[1:-1], kernel, x.shape[-1], module.features, groups)
    kind = _input_kind(trace, x.shape[0], dense=False)
    if kind == "rates":
        raise NotImplementedError(
            f"conv {path} is fed a time-averaged [B, ...] tensor after spiking layers; "
            "operation counts support convs on [B*T, ...] spikes only"
        )
    trace.synapses[path] = ("conv", kind, macs, x.shape[0] // trace.batch)
    sops = jnp.zeros((), jnp.float32)
    if kind == "spikes":
        sops = energy_lib.conv_sops(
            x,
            out_features=module.features,
            kernel_size=kernel,
            strides=_tuple(module.strides, spatial),
            padding=module.padding,
            kernel_dilation=_tuple(module.kernel_dilation, spatial),
            groups=groups,
        )
    out[path] = {"sops": sops}


def _record_dense(trace: _Trace, out: dict, module: nn.Dense, x: jax.Array) -> None:
    path = _path(module)
    macs = energy_lib.dense_macs(x.shape[-1], module.features)
    kind = _input_kind(trace, x.shape[0], dense=True)
    trace.synapses[path] = ("dense", kind, macs, x.shape[0] // trace.batch)
    inputs = jnp.sum(x.astype(jnp.float32))
    if kind == "rates" and trace.mean_pooled_head:  # undo the mean over T and space (module docstring)
        inputs = inputs * trace.last_time_steps * trace.last_neurons_per_step / x.shape[-1]
    elif kind == "rates":
        inputs = trace.last_spikes.astype(jnp.float32)
    out[path] = {"sops": inputs * module.features if kind != "analog" else jnp.zeros((), jnp.float32)}


class StatsProbe:
    """A jitted ``(variables, inputs) -> (logits, SpikeReport)`` for one model (compiled per shape)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        raster_neurons: int = RASTER_NEURONS,
        seed: int = 0,
        spiking: tuple[type, ...] | None = None,
    ):
        self.model = model
        self.spiking = spiking or spiking_types()
        self.raster_neurons = raster_neurons
        self.seed = seed
        self._traces: dict[tuple, _Trace] = {}  # filled at trace time, keyed by the input's shape/dtype
        # The fed epoch is static: it sets the MAC count of a ramped masked PSN (a Python int per layer).
        self._fn = jax.jit(self._run, static_argnums=2)

    def _run(self, variables: Any, inputs: jax.Array, epoch: float = 0.0):
        trace = _Trace(
            batch=inputs.shape[0],
            raster_neurons=self.raster_neurons,
            mean_pooled_head=isinstance(self.model, ResNet),
            epoch=epoch,
        )
        out: dict[str, dict[str, jax.Array]] = {}

        def interceptor(next_fun: Callable, args, kwargs, context):
            y = next_fun(*args, **kwargs)
            if context.method_name != "__call__":
                return y
            module = context.module
            if isinstance(module, self.spiking):
                _record_neuron(trace, out, module, y, args[1] if len(args) > 1 else kwargs["time_steps"])
            elif getattr(type(module), "emits_spikes", None) == "batch_major":  # returns (spikes [B, T, ...], ...)
                spikes = y[0]
                _record_neuron(trace, out, module, spikes.reshape((-1,) + spikes.shape[2:]), spikes.shape[1])
            elif isinstance(module, nn.Conv):
                _record_conv(trace, out, module, args[0], y)
            elif isinstance(module, nn.Dense):
                _record_dense(trace, out, module, args[0])
            return y

        variables = {k: v for k, v in variables.items() if k not in _TRANSIENT}
        key = jax.random.key(self.seed)
        rngs = {"dropout": jax.random.fold_in(key, 0), "encoding": jax.random.fold_in(key, 1)}
        with nn.intercept_methods(interceptor):
            logits, _ = self.model.apply(variables, inputs, train=False, mutable=["spike_stats"], rngs=rngs)
        self._traces[(inputs.shape, str(inputs.dtype), epoch)] = trace
        return logits, out

    def __call__(self, variables: Any, inputs: jax.Array) -> tuple[jax.Array, SpikeReport]:
        inputs = jnp.asarray(inputs)
        epoch = epoch_clock.current_epoch(variables) or 0.0
        logits, out = self._fn(variables, inputs, epoch)
        trace = self._traces[(inputs.shape, str(inputs.dtype), epoch)]
        out = jax.device_get(out)
        b = int(inputs.shape[0])
        time_steps = max((t for _, t in trace.neurons.values()), default=1)
        neurons = tuple(
            NeuronStats(
                path,
                shape,
                int(out[path]["spikes"]),
                b,
                t,
                np.asarray(out[path]["raster"]),
                trace.time_macs.get(path, 0),
            )
            for path, (shape, t) in trace.neurons.items()
        )
        synapses = tuple(
            SynapseStats(path, kind, input_kind, macs, runs, float(out[path]["sops"]), b)
            for path, (kind, input_kind, macs, runs) in trace.synapses.items()
        )
        return logits, SpikeReport(neurons, synapses, b, time_steps)


def forward_with_stats(
    model: nn.Module, variables: Any, inputs: jax.Array, *, raster_neurons: int = RASTER_NEURONS
) -> tuple[jax.Array, SpikeReport]:
    """One eval-mode forward pass: ``(logits [B, classes], SpikeReport)``.

    Args:
      model: a snnjax model (``apply(variables, x, train=False)``); ANN or SNN.
      variables: ``{"params": ..., "batch_stats": ...}``.
      inputs: normalised images ``[B, H, W, C]`` (direct encoding) or ``[B, T, H, W, C]``.
      raster_neurons: how many neurons per layer the raster keeps (example 0).
    """
    return StatsProbe(model, raster_neurons=raster_neurons)(variables, inputs)


def collect_stats(
    model: nn.Module,
    variables: Any,
    inputs: jax.Array | np.ndarray,
    *,
    batch_size: int = 256,
    raster_neurons: int = RASTER_NEURONS,
) -> SpikeReport:
    """:func:`forward_with_stats` over ``inputs`` in chunks of ``batch_size``, statistics merged."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = int(inputs.shape[0])
    if n < 1:
        raise ValueError("collect_stats needs at least one input example, got an empty batch")
    probe = StatsProbe(model, raster_neurons=raster_neurons)
    report = None
    for start in range(0, n, batch_size):
        _, part = probe(variables, jnp.asarray(inputs[start : start + batch_size]))
        report = part if report is None else report.merge(part)
    return report


def spike_summary(
    model: nn.Module,
    variables: Any,
    inputs: jax.Array | np.ndarray,
    *,
    batch_size: int = 256,
    energy_model: energy_lib.EnergyModel = energy_lib.EnergyModel(),
) -> dict[str, Any]:
    """JSON-ready totals for ``summary.json``: firing rate, spikes, SOPs, MACs, energy (per example).

    Keys: ``num_examples``, ``time_steps``, ``mean_firing_rate`` (None for an ANN),
    ``spikes_per_example``, ``sops_per_example``, ``snn_macs_per_example`` (analog first layer),
    ``ann_macs_per_example``, ``energy_snn_uj``, ``energy_ann_uj``, ``energy_ratio`` (ANN / SNN),
    ``e_mac_pj``, ``e_ac_pj`` and ``firing_rates`` (``{layer path: rate}``).
    """
    report = collect_stats(model, variables, inputs, batch_size=batch_size, raster_neurons=1)
    return {**energy_totals(report, energy_model), "firing_rates": report.firing_rates()}


def energy_totals(report: SpikeReport, energy_model: energy_lib.EnergyModel) -> dict[str, Any]:
    """Per-example totals of ``report`` under ``energy_model`` (energies in uJ), JSON-ready:
    the shared part of ``spike_summary`` and the analysis CLI's ``report.json``."""
    est = report.energy(energy_model)
    return {
        "num_examples": report.num_examples,
        "time_steps": report.time_steps,
        "mean_firing_rate": report.mean_firing_rate,
        "spikes_per_example": report.spikes_per_example,
        "sops_per_example": est.sops,
        "snn_macs_per_example": est.snn_macs,
        "ann_macs_per_example": est.ann_macs,
        "energy_snn_uj": est.snn_pj / energy_lib.PJ_PER_UJ,
        "energy_ann_uj": est.ann_pj / energy_lib.PJ_PER_UJ,
        "energy_ratio": est.ratio if math.isfinite(est.ratio) else None,
        "e_mac_pj": energy_model.e_mac_pj,
        "e_ac_pj": energy_model.e_ac_pj,
    }
