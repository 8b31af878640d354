"""Plain-text tables of a :class:`~snnjax.analysis.spikes.SpikeReport` (what the CLI prints)."""

from __future__ import annotations

from snnjax.analysis.energy import EnergyEstimate, EnergyModel
from snnjax.analysis.spikes import SpikeReport


def _num(x: float) -> str:
    """Compact, exact-enough numbers: 1234 -> '1,234', 1.2e9 -> '1.20e+09'."""
    if x >= 1e7:
        return f"{x:.2e}"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def neuron_table(report: SpikeReport) -> str:
    """One row per spiking layer: neurons per step, firing rate, spikes per example."""
    width = max([len(n.path) for n in report.neurons] + [len("spiking layer")])
    lines = [f"{'spiking layer'.ljust(width)}  {'shape':>14}  {'neurons':>9}  {'rate':>7}  {'spikes/ex':>10}"]
    for n in report.neurons:
        lines.append(
            f"{n.path.ljust(width)}  {str(n.shape):>14}  {n.num_neurons:>9,}  {n.firing_rate:>7.4f}  "
            f"{_num(n.spikes_per_example):>10}"
        )
    mean = report.mean_firing_rate
    lines.append(
        f"{'total'.ljust(width)}  {'':>14}  {sum(n.num_neurons for n in report.neurons):>9,}  "
        f"{(mean if mean is not None else 0.0):>7.4f}  {_num(report.spikes_per_example):>10}"
    )
    return "\n".join(lines)


def synapse_table(report: SpikeReport) -> str:
    """One row per conv/dense layer: input kind, SNN SOPs per example, ANN MACs per example."""
    width = max([len(s.path) for s in report.synapses] + [len("synaptic layer")])
    lines = [
        f"{'synaptic layer'.ljust(width)}  {'input':>7}  {'SOPs/ex':>10}  {'SNN MACs/ex':>11}  {'ANN MACs/ex':>11}"
    ]
    for s in report.synapses:
        lines.append(
            f"{s.path.ljust(width)}  {s.input_kind:>7}  {_num(s.sops_per_example):>10}  "
            f"{_num(s.executed_macs):>11}  {_num(s.macs):>11}"
        )
    lines.append(
        f"{'total'.ljust(width)}  {'':>7}  {_num(report.sops_per_example):>10}  "
        f"{_num(report.snn_macs_per_example):>11}  {_num(report.ann_macs_per_example):>11}"
    )
    return "\n".join(lines)


def energy_lines(estimate: EnergyEstimate, energy_model: EnergyModel) -> str:
    """Totals and the energy ratio, with the per-operation figures used."""
    return "\n".join(
        [
            f"energy per example ({energy_model.e_ac_pj} pJ/AC, {energy_model.e_mac_pj} pJ/MAC, 45 nm):",
            f"  SNN: {_num(estimate.sops)} SOPs + {_num(estimate.snn_macs)} MACs = {estimate.snn_pj / 1e6:.4f} uJ",
            f"  ANN: {_num(estimate.ann_macs)} MACs = {estimate.ann_pj / 1e6:.4f} uJ",
            f"  ratio E_ANN / E_SNN = {estimate.ratio:.2f}",
        ]
    )


def format_report(report: SpikeReport, energy_model: EnergyModel = EnergyModel()) -> str:
    """Both tables and the energy lines."""
    parts = []
    if report.neurons:
        parts.append(neuron_table(report))
    parts.append(synapse_table(report))
    parts.append(energy_lines(report.energy(energy_model), energy_model))
    return "\n\n".join(parts)
