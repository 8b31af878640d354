"""Spike analysis of trained models: firing rates, synaptic operations, energy, plots.

from snnjax import analysis
logits, report = analysis.forward_with_stats(model, variables, images)   # one forward pass
report.layer_stats()        # {layer path: {firing_rate, num_neurons, spikes_per_example}}
report.energy()             # SOPs, MACs, E_SNN, E_ANN (45 nm figures), .ratio
analysis.spike_summary(model, variables, images)   # JSON totals for summary.json

python -m snnjax.analysis --workdir DIR       # a finished run: table + PNGs in DIR
"""

from snnjax.analysis.energy import EnergyEstimate, EnergyModel, estimate_energy
from snnjax.analysis.spikes import (
    NeuronStats,
    SpikeReport,
    StatsProbe,
    SynapseStats,
    collect_stats,
    forward_with_stats,
    spike_summary,
)

__all__ = [
    "EnergyEstimate",
    "EnergyModel",
    "estimate_energy",
    "NeuronStats",
    "SpikeReport",
    "StatsProbe",
    "SynapseStats",
    "collect_stats",
    "forward_with_stats",
    "spike_summary",
]
