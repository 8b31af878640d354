"""The STDB neuron of hybrid conversion (Rathi et al. 2020): soft-reset IF / LIF with a per-layer threshold.

Per layer, with a scalar threshold ``v_threshold`` (membrane units, replaced by threshold balancing)::

    u[t] = decay * u[t-1] - v_threshold * s[t-1] + I[t]        u[-1] = 0, s[-1] = 0
    s[t] = H(z[t]),  z[t] = u[t] / v_threshold - 1

``decay = 1`` is the IF neuron (the paper's default). The reset term carries no gradient (the
reference computes it from a comparison); the membrane itself is differentiated through time. The
charge is :func:`snnjax.neurons.charge` (soft reset).

Surrogates of ``dH/dz`` (:mod:`snnjax.surrogates`; the gradient reaching ``u`` is that divided by
``v_threshold``, the chain rule through ``z``, exactly as the reference's autograd does it):

* ``surrogates.stdb(alpha=0.3, beta=0.01)``: ``alpha * exp(-beta * dt[t])``, where ``dt[t]`` is the
  number of steps since the neuron's last spike *before* step ``t`` (1 if it fired at ``t-1``). A
  neuron that has not fired yet has ``dt[t] = NEVER_SPIKED + t`` (the reference initialises the
  last spike time to -1000), so its surrogate is ``alpha * exp(-10)``, about 0.
* ``surrogates.linear(alpha=0.3)``: ``alpha * max(0, 1 - |z|)`` (the reference code's default).

Thresholds and decay are constants here (not trained). Shapes: currents ``[B, T, ...]`` (batch-major,
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

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax import layers, neurons, surrogates

NEVER_SPIKED = 1000.0  # dt of a neuron that never fired, at t = 0 (reference: last spike at -1000)
DEFAULT_SURROGATE = surrogates.stdb()


class NeuronState(NamedTuple):
    """What a neuron carries from one time step (or one chunk of steps) to the next; each ``[B, ...]``.

    membrane: ``u[t]`` after charging, before the reset of the spike it caused (float32).
    spikes: ``s[t]`` (float32 0/1), subtracted as ``v_threshold * s`` at the next step.
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
    v_threshold: float | jax.Array,
    decay: float = 1.0,
    surrogate: surrogates.Surrogate = DEFAULT_SURROGATE,
    state: NeuronState | None = None,
    unroll: int | bool = 1,
    delay: bool = False,
) -> tuple[jax.Array, NeuronState]:
    """Run soft-reset IF (``decay = 1``) or LIF neurons over the time axis 1 of ``currents``.

    Args:
      currents: input current ``I = W * spikes``, ``[B, T, ...]`` (any float dtype).
      v_threshold: ``> 0``, a scalar (per layer) or an array broadcastable to ``[B, ...]``.
      decay: membrane decay per step in ``[0, 1]`` (1.0 = IF).
      surrogate: the spike's surrogate (see module docstring; STDB reads the time since the last spike).
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
    if isinstance(decay, (int, float)) and not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1] (1.0 = IF), got {decay}")
    v_threshold = jnp.asarray(v_threshold, jnp.float32)
    state = initial_state((currents.shape[0],) + currents.shape[2:]) if state is None else state

    def step(carry: NeuronState, current: jax.Array):
        u_prev, s_prev, dt = carry
        u = neurons.charge(
            u_prev, jax.lax.stop_gradient(s_prev), current, decay=decay, v_threshold=v_threshold, reset="soft"
        )
        s = neurons.fire(u, v_threshold, surrogate, since_spike=dt, relative=True)
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
      replaced by threshold balancing (:mod:`snnjax.methods.hybrid.conversion`). Never trained.
    * ``neuron_state/state`` (only when that collection is passed as mutable): the
      :class:`NeuronState` at the end of the call, read back as the start of the next call; lets a
      long simulation run in chunks of time steps.

    Sows the mean firing rate into ``spike_stats/firing_rate``.

    Attributes:
      decay: membrane decay (1.0 = IF).
      v_threshold: initial threshold (the reference's ``default_threshold`` 1.0).
      surrogate: surrogate gradient (``surrogates.stdb()`` or ``surrogates.linear()``).
      unroll: ``lax.scan`` unroll factor.
      delay: one-step spike delay (the official code's timing; see :func:`if_neurons`).
    """

    emits_spikes = True  # counted as a spiking layer by snnjax.analysis (a class attribute, not a field)
    decay: float = 1.0
    v_threshold: float = 1.0
    surrogate: surrogates.Surrogate = DEFAULT_SURROGATE
    unroll: int | bool = 1
    delay: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, time_steps: int) -> jax.Array:
        if not (self.has_variable("thresholds", "threshold") or self.is_mutable_collection("thresholds")):
            raise ValueError(
                f"spiking layer {self.name!r} has no threshold: apply the SNN with variables "
                "{'params': ..., 'thresholds': ...}, e.g. snnjax.methods.hybrid.conversion.snn_variables(ann_variables, "
                "thresholds), or initialise it with model.init"
            )
        threshold = self.variable("thresholds", "threshold", lambda: jnp.asarray(self.v_threshold, jnp.float32))
        currents = layers.split_time(x, time_steps)
        carry = None
        chunked = self.is_mutable_collection("neuron_state") and not self.is_initializing()
        if chunked:
            shape = (currents.shape[0],) + currents.shape[2:]
            state_var = self.variable("neuron_state", "state", lambda: initial_state(shape))
            carry = state_var.value
        spikes, final = if_neurons(
            currents,
            v_threshold=threshold.value,
            decay=self.decay,
            surrogate=self.surrogate,
            state=carry,
            unroll=self.unroll,
            delay=self.delay,
        )
        if chunked:
            state_var.value = final
        self.sow("spike_stats", "firing_rate", jnp.mean(spikes, dtype=jnp.float32))
        return layers.merge_time(spikes)
