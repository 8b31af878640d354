"""IF / LIF neurons with soft reset and spike-timing-dependent surrogates (STDB, Rathi et al. 2020).

The neuron of hybrid conversion, per layer, with a scalar threshold ``theta`` (membrane units)::

    u[t] = leak * u[t-1] - theta * s[t-1] + I[t]        u[-1] = 0, s[-1] = 0
    s[t] = H(z[t]),  z[t] = u[t] / theta - 1

``leak = 1`` is the IF neuron (the paper's default). The reset term carries no gradient (the
reference computes it from a comparison); the membrane itself is differentiated through time.

Surrogates of ``dH/dz`` (the gradient reaching ``u`` is that divided by ``theta``, the chain rule
through ``z = u / theta - 1``, exactly as the reference's autograd does it):

* ``stdb``: ``alpha * exp(-beta * dt[t])`` (alpha 0.3, beta 0.01), where ``dt[t]`` is the number of
  steps since the neuron's last spike *before* step ``t`` (1 if it fired at ``t-1``). A neuron that
  has not fired yet has ``dt[t] = NEVER_SPIKED + t`` (the reference initialises the last spike time
  to -1000), so its surrogate is ``alpha * exp(-10)``, about 0.
* ``linear``: ``alpha * max(0, 1 - |z|)`` (the reference code's default, alpha = gamma = 0.3).

Thresholds and leak are constants here (not trained). Shapes: currents ``[B, T, ...]`` (batch-major,
as everywhere in snnjax); the scan runs time-major internally. Membranes are float32.

One-step spike delay (``delay=True``, the official code's timing): the official forward pass
computes a layer's spike at step ``t`` from the membrane left after step ``t-1``
(``mem_thr = mem / theta - 1`` is evaluated BEFORE the step's input is integrated), so the layer
emits ``s[t-1]`` of the recursion above at step ``t`` and nothing at step 0. The membrane
recursion is unchanged (the reset subtracted at ``t`` is that of the spike emitted at ``t``, which
is ``s[t-1]``); only the emitted train is shifted by one step, and every spiking layer adds one
step of latency. The surrogate and its ``dt`` are those of ``s[t-1]``, as in the official code
(its ``dt = t - 1 - last_spike`` with spike times recorded as ``t - 1``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax import layers, surrogates

SpikeGradKind = Literal["stdb", "linear"]
SPIKE_GRADS = ("stdb", "linear")
NEVER_SPIKED = 1000.0  # dt of a neuron that never fired, at t = 0 (reference: last spike at -1000)


@dataclasses.dataclass(frozen=True)
class SpikeGrad:
    """The spike's surrogate gradient (hashable: a static argument under ``jit``).

    Attributes:
      kind: ``"stdb"`` (``alpha * exp(-beta * dt)``) or ``"linear"`` (``alpha * max(0, 1 - |z|)``).
      alpha: peak value of the surrogate (0.3 in the paper and code for both kinds).
      beta: STDB decay per time step since the last spike (0.01); unused by ``linear``.
    """

    kind: SpikeGradKind = "stdb"
    alpha: float = 0.3
    beta: float = 0.01

    def __post_init__(self):
        if self.kind not in SPIKE_GRADS:
            raise ValueError(f"unknown spike gradient {self.kind!r}; choose one of {list(SPIKE_GRADS)} "
                             "(set it with --config.model.spike_grad=NAME)")
        if not self.alpha > 0:
            raise ValueError(f"spike gradient alpha must be > 0, got {self.alpha} (paper: 0.3)")
        if self.beta < 0:
            raise ValueError(f"STDB beta must be >= 0, got {self.beta} (paper: 0.01)")


def spike(z: jax.Array, since_spike: jax.Array, grad: SpikeGrad) -> jax.Array:
    """``H(z)`` (0/1 in ``z.dtype``) with the surrogate ``grad``; ``since_spike`` is ``dt`` (STDB only)."""
    if grad.kind == "stdb":
        return surrogates.stdb_heaviside(z, since_spike, grad.alpha, grad.beta)
    # alpha * max(0, 1 - |z|) is the unit-width triangle scaled by alpha.
    return surrogates.heaviside(z, surrogates.triangle(1.0, grad.alpha))


class NeuronState(NamedTuple):
    """What a neuron carries from one time step (or one chunk of steps) to the next; each ``[B, ...]``.

    membrane: ``u[t]`` after charging, before the reset of the spike it caused (float32).
    spikes: ``s[t]`` (float32 0/1), subtracted as ``theta * s`` at the next step.
    since_spike: ``dt`` for the next step: steps since the last spike (float32).
    """

    membrane: jax.Array
    spikes: jax.Array
    since_spike: jax.Array


def initial_state(shape: tuple[int, ...]) -> NeuronState:
    """Resting neurons of ``shape`` ``[B, ...]`` that have never fired."""
    zeros = jnp.zeros(shape, jnp.float32)
    return NeuronState(zeros, zeros, jnp.full(shape, NEVER_SPIKED, jnp.float32))


def if_neurons(
    currents: jax.Array,
    *,
    threshold: float | jax.Array,
    leak: float = 1.0,
    spike_grad: SpikeGrad = SpikeGrad(),
    state: NeuronState | None = None,
    unroll: int | bool = 1,
    delay: bool = False,
) -> tuple[jax.Array, NeuronState]:
    """Run soft-reset IF (``leak = 1``) or LIF neurons over the time axis 1 of ``currents``.

    Args:
      currents: input current ``I = W * spikes``, ``[B, T, ...]`` (any float dtype).
      threshold: ``theta > 0``, a scalar (per layer) or an array broadcastable to ``[B, ...]``.
      leak: membrane leak per step in ``[0, 1]`` (1.0 = IF).
      spike_grad: the surrogate (see module docstring).
      state: the state after the previous chunk of steps (``None``: resting, never fired). Running
        ``T`` steps at once equals running them in chunks that hand the state on.
      unroll: ``lax.scan`` unroll factor.
      delay: emit each spike one step later (the official code's timing, see the module docstring):
        the output at step ``t`` is ``s[t-1]`` (at the first step of a run, ``state.spikes``: 0 for
        resting neurons), so chunked runs stay equal to one long run.

    Returns:
      ``(spikes [B, T, ...] in currents.dtype, final NeuronState)``.
    """
    if currents.ndim < 2:
        raise ValueError(f"currents must be [B, T, ...], got shape {currents.shape}")
    if isinstance(leak, (int, float)) and not 0.0 <= leak <= 1.0:
        raise ValueError(f"leak must be in [0, 1] (1.0 = IF), got {leak}")
    threshold = jnp.asarray(threshold, jnp.float32)
    state = initial_state((currents.shape[0],) + currents.shape[2:]) if state is None else state

    def step(carry: NeuronState, current: jax.Array):
        u_prev, s_prev, dt = carry
        u = leak * u_prev - threshold * jax.lax.stop_gradient(s_prev) + current.astype(jnp.float32)
        s = spike(u / threshold - 1.0, dt, spike_grad)
        fired = jax.lax.stop_gradient(s) > 0
        next_dt = jnp.where(fired, 1.0, dt + 1.0)
        return NeuronState(u, s, next_dt), s.astype(currents.dtype)

    final, spikes = jax.lax.scan(step, state, jnp.moveaxis(currents, 1, 0), unroll=unroll)
    spikes = jnp.moveaxis(spikes, 0, 1)
    if delay:
        # s[t-1] at step t; the first step emits the spike the previous chunk left pending.
        pending = jax.lax.stop_gradient(state.spikes).astype(spikes.dtype)[:, None]
        spikes = jnp.concatenate([pending, spikes[:, :-1]], axis=1)
    return spikes, final


class HybridNeuron(nn.Module):
    """A layer of :func:`if_neurons` on a merged ``[B*T, ...]`` current, with its own threshold.

    Variables (not parameters, so ANN and SNN parameter trees stay identical):

    * ``thresholds/threshold``: the layer's scalar threshold, initialised to ``v_threshold`` and
      replaced by threshold balancing (:mod:`snnjax.conversion`). Never trained.
    * ``neuron_state/state`` (only when that collection is passed as mutable): the
      :class:`NeuronState` at the end of the call, read back as the start of the next call; lets a
      long simulation run in chunks of time steps.

    Sows the mean firing rate into ``spike_stats/firing_rate``.

    Attributes:
      leak: membrane leak (1.0 = IF).
      v_threshold: initial threshold (the reference's ``default_threshold`` 1.0).
      spike_grad: surrogate gradient.
      unroll: ``lax.scan`` unroll factor.
      delay: one-step spike delay (the official code's timing; see :func:`if_neurons`).
    """

    leak: float = 1.0
    v_threshold: float = 1.0
    spike_grad: SpikeGrad = SpikeGrad()
    unroll: int | bool = 1
    delay: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int) -> jax.Array:
        if not (self.has_variable("thresholds", "threshold") or self.is_mutable_collection("thresholds")):
            raise ValueError(
                f"spiking layer {self.name!r} has no threshold: apply the SNN with variables "
                "{'params': ..., 'thresholds': ...}, e.g. snnjax.conversion.snn_variables(ann_variables, "
                "thresholds), or initialise it with model.init")
        threshold = self.variable("thresholds", "threshold", lambda: jnp.asarray(self.v_threshold, jnp.float32))
        currents = layers.split_time(x, time_steps)
        carry = None
        chunked = self.is_mutable_collection("neuron_state") and not self.is_initializing()
        if chunked:
            shape = (currents.shape[0],) + currents.shape[2:]
            state_var = self.variable("neuron_state", "state", lambda: initial_state(shape))
            carry = state_var.value
        spikes, final = if_neurons(currents, threshold=threshold.value, leak=self.leak,
                                   spike_grad=self.spike_grad, state=carry, unroll=self.unroll,
                                   delay=self.delay)
        if chunked:
            state_var.value = final
        self.sow("spike_stats", "firing_rate", jnp.mean(spikes, dtype=jnp.float32))
        return layers.merge_time(spikes)
