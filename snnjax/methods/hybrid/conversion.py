"""ANN -> SNN conversion by threshold balancing (Rathi et al. 2020; Sengupta et al. 2019).

The SNN reuses the ANN's weights unchanged (the parameter trees of the ANN and SNN
:class:`~snnjax.methods.hybrid.vgg.VGG` or :class:`~snnjax.methods.hybrid.resnet.HybridResNet` are
identical, so conversion is a tree copy) and gets one firing threshold per layer:

1. with decay 1 (IF neurons) and a long simulation (``time_steps``, 1000 in the reference code), for
   each spiking layer ``l`` in forward order, run the SNN whose earlier layers already have their
   thresholds and record layer ``l``'s input current ``W * spikes`` on one or more training batches;
2. ``theta_l`` = the maximum of that current over time steps, examples and neurons (or a
   percentile of it, e.g. 99.7, which ignores rare outliers);
3. the SNN then runs with ``scaling_factor * theta_l`` (0.7 by default; 0.6-0.8 suits T >= 100,
   smaller values suit smaller T) - :func:`scale_thresholds`.

Which layers are balanced (``BalanceSettings.mode``, ``config.conversion.balance``):

* ``all``: every spiking layer, as the official VGG code (and a plain chain needs nothing else);
* ``stem`` (the official ResNet code, ``snn.py: find_threshold``): only the ResNet's three stem
  convolutions; every block threshold stays at ``default_threshold`` (1.0) and is not scaled.
  This keeps a block's two input terms on one scale: with rates ``r = a / lambda`` (``lambda`` the
  activation scale a layer's spikes stand for), balancing gives ``lambda_l = lambda_(l-1) * theta_l``,
  so ``conv2(s1) + shortcut(x)`` adds ``W2 a1 / lambda1`` to ``a_in / lambda_in`` - the ANN's
  ``W2 a1 + a_in`` up to one factor only when ``theta_conv1 = 1``;
* ``residual`` (snnjax's correction, not in the paper): every layer balanced (no saturation), and
  each block's ``conv2`` kernel multiplied by its ``conv1``'s final threshold, which puts both terms
  back on the block input's scale (:func:`snn_variables`). With ``all`` a ResNet's blocks add the
  two terms in the wrong ratio (measured in docs/hybrid_stdb.md).

Where the statistic comes from (``BalanceSettings.statistic``, ``config.conversion.statistic``):

* ``spikes`` (the paper and its code, after Sengupta et al. 2019): the input current of a spiking
  simulation, steps 1-2 above. Its maximum over steps is set by coincident spikes, above the mean
  current that a rate stands for, so every layer fires below its ANN activation and the loss
  compounds with depth (a 19-layer ResNet went silent after ~10 layers, docs/hybrid_stdb.md);
* ``activations`` (Rueckauer et al. 2017, "robust normalisation"; snnjax's option): no simulation.
  ``lambda_l`` = the ``percentile`` of layer ``l``'s post-ReLU ANN activations on the balancing
  batches, and ``theta_l = lambda_l / lambda_in(l)`` where ``in(l)`` is the layer whose spikes
  feed ``l`` (:func:`input_layers`; a block's ``conv2`` counts the block input, which mode
  ``residual`` makes true) and the input's ``lambda`` is ``1 / poisson_gain`` (1 for direct input).
  A neuron then fires at rate ``a_l / lambda_l``, the ANN's activation on one scale per layer.

Long simulations run in chunks of ``time_chunk`` steps that hand the membrane state on (the
``neuron_state`` collection of :class:`~snnjax.methods.hybrid.neuron.HybridNeuron`), so memory grows with the chunk,
not with ``T``. A maximum is exact over chunks and batches. A percentile is computed per forward
pass (one batch, one chunk) and the largest of those is taken: with one batch and no chunking it
is the exact percentile of the pooled currents.

The hybrid VGG and ResNet families (:mod:`~snnjax.methods.hybrid.vgg`,
:mod:`~snnjax.methods.hybrid.resnet`, both BN-free) convert; the BN Spiking ResNet of
:mod:`snnjax.models.resnet` does not (it would need BN folding; see docs/hybrid_stdb.md).

Shapes: images ``[B, H, W, C]`` float, already normalised as the ANN saw them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import core as flax_core
from flax import traverse_util
from jax.sharding import Mesh

from snnjax import layers
from snnjax.data import batches as data_batches
from snnjax.methods.hybrid import neuron as neuron_lib
from snnjax.methods.hybrid import resnet as resnet_lib
from snnjax.methods.hybrid import vgg as vgg_lib
from snnjax.train import evaluate
from snnjax.train import mesh as mesh_lib

Variables = dict[str, Any]
Thresholds = dict[str, float]  # spiking layer name -> threshold (membrane units)
HybridModel = vgg_lib.VGG | resnet_lib.HybridResNet  # the families that convert


BALANCE_MODES = ("all", "stem", "residual")
STATISTICS = ("spikes", "activations")


@dataclasses.dataclass(frozen=True)
class BalanceSettings:
    """Threshold-balancing settings (reference code: T = 1000, one batch of 512, max, x0.7)."""

    time_steps: int = 1000
    percentile: float = 100.0
    scaling_factor: float = 0.7
    time_chunk: int = 0  # 0: simulate all time steps in one pass
    mode: str = "all"  # all | stem | residual (module doc)
    statistic: str = "spikes"  # spikes (official) | activations (Rueckauer et al. 2017; module doc)
    default_threshold: float = 1.0  # mode "stem": every block layer's threshold (official default_threshold)

    def __post_init__(self):
        if self.mode not in BALANCE_MODES:
            raise ValueError(f"balancing mode must be one of {list(BALANCE_MODES)}, got {self.mode!r}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"balancing statistic must be one of {list(STATISTICS)}, got {self.statistic!r}")
        if not self.default_threshold > 0.0:
            raise ValueError(f"default_threshold must be > 0, got {self.default_threshold} (official: 1.0)")
        if self.time_steps < 1:
            raise ValueError(f"balancing time_steps must be >= 1, got {self.time_steps} (reference: 1000)")
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"balancing percentile must be in (0, 100], got {self.percentile} (100 = max)")
        if not self.scaling_factor > 0.0:
            raise ValueError(f"scaling_factor must be > 0, got {self.scaling_factor} (reference: 0.7)")
        if self.time_chunk < 0:
            raise ValueError(f"time_chunk must be >= 0 (0 = no chunking), got {self.time_chunk}")


def snn_variables(ann_variables: Variables, thresholds: Thresholds, *, mode: str = "all") -> Variables:
    """The SNN's variables: the ANN's ``params`` plus ``thresholds`` (a tree copy).

    ``mode="residual"``: every ResNet block's ``conv2`` kernel times its ``conv1``'s threshold in
    ``thresholds`` (:func:`~snnjax.methods.hybrid.resnet.rescale_second_convs`); other modes keep
    the ANN's ``params`` as they are.
    """
    params = ann_variables["params"]
    if mode == "residual":
        params = resnet_lib.rescale_second_convs(params, thresholds)
    return {"params": params, "thresholds": vgg_lib.thresholds_to_collection(thresholds)}


def balanced_layers(model: HybridModel, mode: str) -> tuple[str, ...]:
    """The spiking layers that balancing sets in ``mode`` (the rest keep the default threshold)."""
    if mode not in BALANCE_MODES:
        raise ValueError(f"balancing mode must be one of {list(BALANCE_MODES)}, got {mode!r}")
    if mode != "all" and not isinstance(model, resnet_lib.HybridResNet):
        raise ValueError(
            f"balancing mode {mode!r} is for the hybrid ResNets (it concerns residual blocks); "
            f"got {type(model).__name__}. Fix: config.conversion.balance='all' for a VGG"
        )
    if mode == "stem":
        return resnet_lib.STEM
    return model.spiking_layers()


def input_layers(model: HybridModel) -> dict[str, str | None]:
    """``{layer: the spiking layer whose spikes feed it}`` (None: the network input), for every
    spiking layer. VGG: the previous layer; ResNet: a block's ``conv1`` and ``conv2`` both count
    the block input (for ``conv2`` that is its shortcut term's source)."""
    names = model.spiking_layers()
    out: dict[str, str | None] = {}
    for i, name in enumerate(names):
        previous = names[i - 1] if i else None
        if isinstance(model, resnet_lib.HybridResNet) and name.endswith("_conv2"):
            previous = out[name[: -len("_conv2")] + "_conv1"]
        out[name] = previous
    return out


def ann_activation_statistics(
    model: HybridModel, ann_variables: Variables, batches: Sequence[np.ndarray | jax.Array], percentile: float
) -> dict[str, float]:
    """``{layer: percentile of its post-ReLU ANN activations}`` over ``batches`` ``[B, H, W, C]``
    (the ANN twin of ``model``: the same parameters with ReLU, one step, direct input)."""
    ann = model.clone(activation=layers.ReLU, time_steps=1, encoding="direct", probe=None)
    names = model.spiking_layers()
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in names}
    apply = jax.jit(
        lambda params, x: ann.apply(
            {"params": params}, x, train=False, capture_intermediates=True, mutable=["intermediates"]
        )[1]["intermediates"]
    )
    for batch in batches:
        captured = apply(ann_variables["params"], jnp.asarray(batch, jnp.float32))
        for name in names:
            pooled[name].append(np.asarray(captured[name + vgg_lib.ACT_SUFFIX]["__call__"][0]).ravel())
    return {name: _reduce(jnp.asarray(np.concatenate(values)), percentile) for name, values in pooled.items()}


def activation_thresholds(
    model: HybridModel,
    ann_variables: Variables,
    batches: Sequence[np.ndarray | jax.Array],
    settings: BalanceSettings,
    *,
    log: Any = None,
) -> Thresholds:
    """Thresholds ``lambda_l / lambda_in(l)`` from ANN activation percentiles (statistic ``activations``,
    module doc); layers that ``settings.mode`` leaves unbalanced get ``settings.default_threshold``."""
    scale = ann_activation_statistics(model, ann_variables, batches, settings.percentile)
    input_scale = 1.0 / float(getattr(model, "poisson_gain", 1.0)) if model.encoding == "poisson" else 1.0
    balanced = balanced_layers(model, settings.mode)
    thresholds: Thresholds = {}
    for name, source in input_layers(model).items():
        if name not in balanced:
            thresholds[name] = float(settings.default_threshold)
            continue
        if not scale[name] > 0.0:
            raise ValueError(
                f"layer {name!r}: the ANN's activations are all <= 0 on the balancing batches (percentile "
                f"{settings.percentile}), so it has no scale. Fixes: check that the ANN is trained, use more "
                "balancing examples, or a higher percentile"
            )
        thresholds[name] = scale[name] / (scale[source] if source is not None else input_scale)
        if log is not None:
            log(f"threshold {name}: {thresholds[name]:.4f} (activation scale {scale[name]:.4f})")
    return thresholds


def scale_thresholds(thresholds: Thresholds, scaling_factor: float, *, mode: str = "all") -> Thresholds:
    """Every balanced threshold times ``scaling_factor``; in mode ``stem`` the block thresholds are
    left as they are (official ``threshold_update`` scales the stem only)."""
    return {
        name: float(value) * (scaling_factor if mode != "stem" or name in resnet_lib.STEM else 1.0)
        for name, value in thresholds.items()
    }


def _check_model(model: HybridModel) -> None:
    act = getattr(model, "activation", None)
    if not (
        isinstance(model, (vgg_lib.VGG, resnet_lib.HybridResNet))
        and isinstance(act, functools.partial)
        and act.func is neuron_lib.HybridNeuron
    ):
        raise TypeError(
            "conversion needs a spiking VGG or ResNet of the hybrid family (snnjax.methods.hybrid.vgg.VGG or "
            "snnjax.methods.hybrid.resnet.HybridResNet whose activation is functools.partial(HybridNeuron, ...)), "
            f"got {type(model).__name__} with activation {act!r}; build one with "
            "snnjax.models.build(vgg_config(neuron='if') or resnet_config(neuron='if'), ...)"
        )


def with_decay(model: HybridModel, decay: float) -> HybridModel:
    """``model`` with every neuron's decay set to ``decay`` (balancing uses IF neurons: decay 1)."""
    _check_model(model)
    if model.activation.keywords.get("decay", neuron_lib.HybridNeuron.decay) == decay:
        return model  # the same module object keeps the compiled simulations cached
    return model.clone(activation=functools.partial(model.activation, decay=decay))


def _chunks(start: int, stop: int, time_chunk: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut into pieces of at most ``time_chunk`` steps (0: one piece)."""
    size = stop - start if time_chunk <= 0 else time_chunk
    return [(t, min(t + size, stop)) for t in range(start, stop, size)]


@functools.lru_cache(maxsize=64)
def _compiled_run(model: HybridModel, steps: int, with_state: bool, count_spikes: bool = False):
    """jit'd ``(variables, x, key[, state]) -> (output, new neuron_state[, spikes per example])`` of
    ``model`` for ``steps`` steps (``count_spikes``: also the batch's mean spike count over every
    spiking layer and step, :func:`spikes_per_example`)."""
    chunk_model = model.clone(time_steps=steps)
    collections = ["neuron_state"] + (["spike_stats"] if count_spikes else [])

    def run(variables, x, key, state=None):
        if state is not None:
            variables = {**variables, "neuron_state": state}
        out, updates = chunk_model.apply(variables, x, train=False, rngs={"encoding": key}, mutable=collections)
        new_state = updates.get("neuron_state", {})
        if count_spikes:
            return out, new_state, spikes_per_example(updates.get("spike_stats", {}), new_state, steps)
        return out, new_state

    if with_state:
        return jax.jit(run)
    return jax.jit(lambda variables, x, key: run(variables, x, key))


def spikes_per_example(stats: Any, neuron_state: Any, steps: int) -> jax.Array:
    """Spikes per example of one forward pass: sum over spiking layers of rate x steps x neurons.

    ``stats``: the ``spike_stats`` collection (each :class:`~snnjax.methods.hybrid.neuron.HybridNeuron`
    sows its mean firing rate over ``[B, steps, ...]``); ``neuron_state``: the same layers' states,
    whose ``[B, ...]`` shapes give the neurons per example. A batch mean (a padded last batch counts
    its copies of the last example).
    """
    rates = traverse_util.flatten_dict(flax_core.unfreeze(stats))
    states = traverse_util.flatten_dict(flax_core.unfreeze(neuron_state))
    neurons = {path[:-1]: int(np.prod(state.membrane.shape[1:])) for path, state in states.items()}
    total = jnp.zeros((), jnp.float32)
    for path, sown in rates.items():
        if path[-1] == "firing_rate":
            total = total + sum(sown) * (steps * neurons[path[:-1]])
    return total


def _place(x: np.ndarray | jax.Array, mesh: Mesh | None) -> jax.Array:
    """Shard the batch over ``mesh`` (the run's) when it splits evenly, else (and without a mesh) leave it
    to the default device."""
    if mesh is not None and x.shape[0] % mesh.devices.size == 0:
        return jax.device_put(x, mesh_lib.batch_sharded(mesh))
    return jnp.asarray(x)


def run_chunked(
    model: HybridModel,
    variables: Variables,
    x: jax.Array,
    key: jax.Array,
    *,
    time_steps: int,
    time_chunk: int = 0,
    state: Any = None,
    start: int = 0,
    count_spikes: bool = False,
) -> Iterable[tuple[int, jax.Array, Any]]:
    """Simulate steps ``[start, start + time_steps)`` of ``model`` in chunks; yield per chunk.

    Yields ``(end_step, output, state)``: the model's output for the chunk (logits summed over the
    chunk's steps, or the probed current ``[B, chunk, ...]``) and the neuron state after it; with
    ``count_spikes``, ``(end_step, output, state, spikes)``: also the chunk's spikes per example
    (every spiking layer). The encoding rng of the chunk starting at step ``t`` is
    ``fold_in(key, t)``, so results do not depend on how a run is chunked for deterministic (direct)
    inputs.
    """
    for lo, hi in _chunks(start, start + time_steps, time_chunk):
        fn = _compiled_run(model, hi - lo, state is not None, count_spikes)
        args = (variables, x, jax.random.fold_in(key, lo)) + ((state,) if state is not None else ())
        out, state, *spikes = fn(*args)
        yield (hi, out, state, *spikes)


def _reduce(current: jax.Array, percentile: float) -> float:
    if percentile >= 100.0:
        return float(jnp.max(current))
    return float(jnp.percentile(current, percentile))


def layer_input_statistic(
    model: HybridModel,
    variables: Variables,
    x: jax.Array,
    key: jax.Array,
    *,
    layer: str,
    time_steps: int,
    percentile: float = 100.0,
    time_chunk: int = 0,
    mesh: Mesh | None = None,
) -> float:
    """Max (or ``percentile``) of ``layer``'s input current over ``time_steps`` steps of the SNN on ``x``.

    ``variables`` must hold the thresholds of every spiking layer before ``layer``; ``x`` is sharded
    over ``mesh`` (the run's; None: the default device) when its batch splits evenly.
    """
    probe = model.clone(probe=layer)
    x = _place(x, mesh)
    return max(
        _reduce(out, percentile)
        for _, out, _ in run_chunked(probe, variables, x, key, time_steps=time_steps, time_chunk=time_chunk)
    )


def balance_thresholds(
    model: HybridModel,
    ann_variables: Variables,
    batches: Sequence[np.ndarray | jax.Array],
    key: jax.Array,
    settings: BalanceSettings = BalanceSettings(),
    *,
    log: Any = None,
    mesh: Mesh | None = None,
) -> Thresholds:
    """Per-layer thresholds of the converted SNN, BEFORE ``settings.scaling_factor`` (see module doc).

    Args:
      model: the spiking VGG or ResNet (its decay is overridden with 1, its ``time_steps`` ignored).
      ann_variables: the trained ANN's variables (``params`` are used).
      batches: one or more normalised training batches ``[B, H, W, C]``.
      key: PRNG key of the input encoding (Poisson).
      settings: simulation length, percentile, chunking, which layers (``mode``).
      log: optional ``callable(str)`` told each layer's threshold as it is found.
      mesh: the run's mesh, over which each balancing batch is sharded (None: the default device).

    Returns:
      ``{layer: theta}`` for every spiking layer, in forward order (``settings.mode`` "stem": the
      block layers at ``settings.default_threshold``, without simulating them).
    """
    if not batches:
        raise ValueError("balance_thresholds needs at least one training batch")
    if settings.statistic == "activations":
        return activation_thresholds(model, ann_variables, batches, settings, log=log)
    model = with_decay(model, 1.0)
    balanced = balanced_layers(model, settings.mode)
    thresholds: Thresholds = {}
    for index, layer in enumerate(model.spiking_layers()):
        if layer not in balanced:
            thresholds[layer] = float(settings.default_threshold)
            continue
        variables = snn_variables(ann_variables, thresholds, mode=settings.mode)
        value = max(
            layer_input_statistic(
                model,
                variables,
                batch,
                jax.random.fold_in(key, 1000 * index + b),
                layer=layer,
                time_steps=settings.time_steps,
                percentile=settings.percentile,
                time_chunk=settings.time_chunk,
                mesh=mesh,
            )
            for b, batch in enumerate(batches)
        )
        if not value > 0.0:
            raise ValueError(
                f"layer {layer!r} received no positive input current in {settings.time_steps} steps "
                f"(statistic {value}); its threshold would be {value}. Fixes: check that the ANN is "
                "trained, use more balancing time steps or a larger batch, or a higher percentile"
            )
        thresholds[layer] = value
        if log is not None:
            log(f"threshold {layer}: {value:.4f}")
    return thresholds


def accuracy_over_time(
    model: HybridModel,
    variables: Variables,
    images: np.ndarray,
    labels: np.ndarray,
    key: jax.Array,
    *,
    time_steps: Sequence[int],
    batch_size: int = 256,
    time_chunk: int = 0,
    mesh: Mesh | None = None,
) -> dict[int, float]:
    """Test accuracy of the SNN after each number of steps in ``time_steps``: the ``accuracy`` of
    :func:`sweep_over_time` (same arguments)."""
    points = sweep_over_time(
        model,
        variables,
        images,
        labels,
        key,
        time_steps=time_steps,
        batch_size=batch_size,
        time_chunk=time_chunk,
        mesh=mesh,
    )
    return {t: point["accuracy"] for t, point in points.items()}


def sweep_over_time(
    model: HybridModel,
    variables: Variables,
    images: np.ndarray,
    labels: np.ndarray,
    key: jax.Array,
    *,
    time_steps: Sequence[int],
    batch_size: int = 256,
    time_chunk: int = 0,
    mesh: Mesh | None = None,
) -> dict[int, dict[str, float]]:
    """Test accuracy and spikes per image of the SNN after each number of steps in ``time_steps``,
    all from one simulation of ``max(time_steps)`` steps per batch.

    Logits at ``T`` are the head's input current summed over the first ``T`` steps, and spikes at
    ``T`` are every spiking layer's spikes over the first ``T`` steps, so each ``T`` equals a separate
    ``T``-step run with the same encoding draws.

    Args:
      model: the spiking VGG or ResNet; ``variables``: ``{"params", "thresholds"}``.
      images: normalised ``[N, H, W, C]``; labels ``[N]`` ints.
      key: encoding PRNG key (batch ``i`` uses ``fold_in(key, i)``).
      time_steps: the ``T`` values to report (positive ints).
      batch_size: examples per forward pass (a divisor of ``N`` counts spikes exactly; otherwise the
        padded last batch's copies of its last example enter its mean).
      time_chunk: at most this many steps per compiled call (0: cut only at the reported ``T``).
      mesh: the run's mesh, over which each batch is sharded (None: the default device).

    Returns:
      ``{T: {"accuracy": in [0, 1], "spikes_per_image": spikes of every spiking layer, summed over T steps}}``.
    """
    marks = sorted({int(t) for t in time_steps})
    if not marks or marks[0] < 1:
        raise ValueError(f"time_steps must be positive ints, got {list(time_steps)}")
    _check_model(model)
    n = int(images.shape[0])

    def batch_sums(b: int) -> dict[str, Any]:
        lo = b * batch_size
        idx = np.minimum(np.arange(lo, lo + batch_size), n - 1)  # fixed shape: pad with the last example
        valid = np.arange(lo, lo + batch_size) < n
        x = _place(np.asarray(images)[idx], mesh)
        batch_labels = np.asarray(labels)[idx]
        batch_key = jax.random.fold_in(key, b)
        count = int(valid.sum())
        sums: dict[str, Any] = {"count": count}
        logits, state, done, spikes = 0.0, None, 0, 0.0
        for mark in marks:
            for _, out, state, chunk_spikes in run_chunked(  # noqa: B007, B020 (the state carries over)
                model,
                variables,
                x,
                batch_key,
                time_steps=mark - done,
                time_chunk=time_chunk,
                state=state,
                start=done,
                count_spikes=True,
            ):
                logits = logits + out
                spikes = spikes + chunk_spikes
            done = mark
            pred = np.asarray(jnp.argmax(logits, axis=-1))
            sums[f"accuracy@{mark}"] = int(np.sum((pred == batch_labels) & valid))
            sums[f"spikes@{mark}"] = spikes * count
        return sums

    means = evaluate.accumulate(batch_sums, data_batches.num_eval_batches(n, batch_size))
    return {t: {"accuracy": means[f"accuracy@{t}"], "spikes_per_image": means[f"spikes@{t}"]} for t in marks}
