"""Operation counts and the energy estimate of a spiking network against its ANN twin.

Counts (per example):

* **MACs** of a layer in the ANN twin (same architecture, ReLU, one pass):
  conv ``H_out * W_out * k_h * k_w * (C_in / groups) * C_out``, dense ``C_in * C_out``.
  Padding taps count, as in the usual FLOP tables.
* **SOPs** (synaptic operations, one accumulate each) of a layer in the SNN: every input spike is
  added once into every output neuron whose receptive field holds it with a real (not padding)
  weight. For a conv this is exactly::

      SOPs = (C_out / groups) * sum( conv(x, ones[k_h, k_w, C_in, 1], stride, padding) )

  summed over the batch and the time steps of ``x`` (spikes, shape ``[B*T, H, W, C_in]``): the
  ones-kernel convolution counts, for every output position, the spikes in its receptive field,
  and each of them drives ``C_out / groups`` output channels. Away from the borders each spike thus
  costs ``k_h * k_w * C_out / stride^2`` accumulates; at the borders and with strides the formula
  counts the true number. An input value ``n > 1`` (a SEW-add of two spikes) counts ``n`` spikes.

Energy (45 nm CMOS, 32-bit float, Horowitz ISSCC 2014; the figures the SNN papers use)::

    E_ANN = MACs_ANN * 4.6 pJ
    E_SNN = SOPs * 0.9 pJ + MACs_analog * 4.6 pJ

where ``MACs_analog`` are the multiply-accumulates the SNN still runs on analog values: its first
layer under direct encoding (the normalised image is not a spike train; snnjax computes that conv
once and repeats its output over T, so it is counted once, or T times for ``[B, T, ...]`` inputs).
A parallel spiking neuron (PSN) also multiplies: it mixes its ``T`` analog input currents over time
(``H = W X``), one MAC per nonzero entry of its ``T x T`` weight for every neuron
(:func:`psn_time_macs`); those MACs count in ``MACs_analog``. Memory traffic, BN (folded into the
convs at inference), pooling, residual additions and the other neurons' updates (a few operations per
neuron and step, like the ANN's ReLU) are not counted, by either side.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

E_MAC_PJ = 4.6  # one 32-bit float multiply-accumulate, 45 nm
E_AC_PJ = 0.9  # one 32-bit float add (an accumulate), 45 nm
PJ_PER_UJ = 1e6


@dataclasses.dataclass(frozen=True)
class EnergyModel:
    """Energy per operation in picojoules (defaults: 45 nm, 32-bit float)."""

    e_mac_pj: float = E_MAC_PJ
    e_ac_pj: float = E_AC_PJ

    def __post_init__(self):
        if self.e_mac_pj <= 0 or self.e_ac_pj <= 0:
            raise ValueError(
                f"energy per operation must be > 0 pJ, got e_mac_pj={self.e_mac_pj}, e_ac_pj={self.e_ac_pj}"
            )


@dataclasses.dataclass(frozen=True)
class EnergyEstimate:
    """Per-example operation counts and energies (pJ); ``ratio = ann_pj / snn_pj``."""

    sops: float
    snn_macs: float
    ann_macs: float
    snn_pj: float
    ann_pj: float

    @property
    def ratio(self) -> float:
        """How many times less energy the SNN needs than its ANN twin (inf if it needs none)."""
        return self.ann_pj / self.snn_pj if self.snn_pj > 0 else math.inf


def estimate_energy(
    sops: float, snn_macs: float, ann_macs: float, energy_model: EnergyModel = EnergyModel()
) -> EnergyEstimate:
    """``E_SNN = sops * e_ac + snn_macs * e_mac`` and ``E_ANN = ann_macs * e_mac`` (per example, pJ)."""
    return EnergyEstimate(
        sops=float(sops),
        snn_macs=float(snn_macs),
        ann_macs=float(ann_macs),
        snn_pj=float(sops) * energy_model.e_ac_pj + float(snn_macs) * energy_model.e_mac_pj,
        ann_pj=float(ann_macs) * energy_model.e_mac_pj,
    )


def conv_macs(
    out_spatial: Sequence[int], kernel_size: Sequence[int], in_features: int, out_features: int, groups: int = 1
) -> int:
    """MACs of one conv on one example: ``prod(out_spatial) * prod(kernel) * (C_in/groups) * C_out``."""
    if in_features % groups:
        raise ValueError(f"conv input channels {in_features} are not divisible by groups={groups}")
    return math.prod(out_spatial) * math.prod(kernel_size) * (in_features // groups) * out_features


def psn_time_macs(variant: str, time_steps: int, order: int, lam: float = 1.0) -> int:
    """MACs one PSN neuron runs per example to mix its ``T`` inputs over time: the nonzero entries of its
    ``T x T`` weight. ``T^2`` for ``"full"`` (and ``"masked"`` before ``lam`` reaches 1); the lower band
    of width ``k = order``, ``sum_t min(t + 1, k)``, for ``"masked"`` at ``lam = 1`` and ``"sliding"``."""
    if variant == "full" or (variant == "masked" and lam < 1.0):
        return time_steps * time_steps
    if variant in ("masked", "sliding"):
        return sum(min(t + 1, order) for t in range(time_steps))
    raise ValueError(f"unknown PSN variant {variant!r}")


def dense_macs(in_features: int, out_features: int) -> int:
    """MACs of a dense layer on one input vector: ``C_in * C_out``."""
    return in_features * out_features


def lax_padding(padding, num_spatial: int) -> str | tuple[tuple[int, int], ...]:
    """A Flax ``nn.Conv`` padding as ``lax.conv_general_dilated`` takes it (``SAME``/``VALID``/pairs)."""
    if isinstance(padding, str):
        if padding.upper() in ("SAME", "VALID"):
            return padding.upper()
        raise NotImplementedError(
            f"operation counts support SAME, VALID or explicit conv padding, got "
            f"{padding!r}; use explicit padding pairs in the model"
        )
    if isinstance(padding, int):
        return ((padding, padding),) * num_spatial
    pairs = tuple(padding)
    if len(pairs) != num_spatial:
        raise ValueError(f"conv padding {padding!r} does not give one entry per spatial axis ({num_spatial})")
    return tuple((p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in pairs)


def conv_sops(
    x: jax.Array,
    *,
    out_features: int,
    kernel_size: Sequence[int],
    strides: Sequence[int],
    padding,
    kernel_dilation: Sequence[int] | None = None,
    groups: int = 1,
) -> jax.Array:
    """Exact accumulate count of a conv fed ``x`` ``[N, *spatial, C_in]`` (spikes or spike counts).

    ``(C_out / groups) * sum(conv(x, ones[*kernel, C_in, 1]))`` summed over all of ``x``'s leading
    axis (float32 scalar). See the module docstring for why this is exact.
    """
    spatial = x.ndim - 2
    ones = jnp.ones(tuple(kernel_size) + (x.shape[-1], 1), jnp.float32)
    dims = jax.lax.conv_dimension_numbers(
        x.shape, ones.shape, ("NHWC", "HWIO", "NHWC") if spatial == 2 else ("NWC", "WIO", "NWC")
    )
    in_field = jax.lax.conv_general_dilated(
        x.astype(jnp.float32),
        ones,
        window_strides=tuple(strides),
        padding=lax_padding(padding, spatial),
        rhs_dilation=tuple(kernel_dilation) if kernel_dilation else None,
        dimension_numbers=dims,
    )
    return jnp.sum(in_field) * (out_features // groups)
