"""Matplotlib figures of a :class:`~snnjax.analysis.spikes.SpikeReport` (saved as PNG, Agg backend).

Every function takes the report and an output path and returns the path; nothing is shown, so they
run headless (CI, servers). In a notebook, ``IPython.display.Image(path)`` shows the PNG.
"""

from __future__ import annotations

import numpy as np

from snnjax.analysis.spikes import NeuronStats, SpikeReport
from snnjax.plotting import pyplot


def _pyplot():
    # Through snnjax.plotting: an unwritable HOME then adds no matplotlib warnings.
    return pyplot()


def _short(path: str) -> str:
    """``stage1_block0/act_out`` -> ``s1b0/act_out`` (tick labels of deep nets stay readable)."""
    return path.replace("stage", "s").replace("_block", "b")


def plot_firing_rates(report: SpikeReport, out_png: str) -> str:
    """Bar chart: firing rate (spikes per neuron per step) of every spiking layer, in call order."""
    plt = _pyplot()
    rates = [n.firing_rate for n in report.neurons]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rates) + 2), 4))
    ax.bar(range(len(rates)), rates, color="tab:blue")
    ax.set_xticks(range(len(rates)), [_short(n.path) for n in report.neurons], rotation=70, ha="right", fontsize=8)
    mean = report.mean_firing_rate
    if mean is not None:
        ax.axhline(mean, color="tab:red", ls="--", lw=1, label=f"neuron-weighted mean {mean:.3f}")
        ax.legend(fontsize=8)
    ax.set(
        ylabel="firing rate (spikes / neuron / step)",
        title=f"firing rates, T={report.time_steps}, {report.num_examples} test examples",
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def plot_operations(report: SpikeReport, out_png: str) -> str:
    """Per synaptic layer: the SNN's SOPs per example next to the ANN twin's MACs (log scale)."""
    plt = _pyplot()
    syn = report.synapses
    x = np.arange(len(syn))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(syn) + 2), 4))
    ax.bar(x - 0.2, [s.macs for s in syn], 0.4, label="ANN MACs", color="tab:gray")
    ax.bar(
        x + 0.2,
        [max(s.sops_per_example, s.executed_macs) for s in syn],
        0.4,
        color="tab:green",
        label="SNN SOPs (analog first layer: MACs)",
    )
    ax.set_yscale("log")
    ax.set_xticks(x, [_short(s.path) for s in syn], rotation=70, ha="right", fontsize=8)
    ax.set(ylabel="operations per example", title="synaptic operations vs. MACs per layer")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def raster_layers(report: SpikeReport, count: int = 4) -> list[NeuronStats]:
    """Up to ``count`` spiking layers evenly spread from the first to the last (those with a raster)."""
    with_raster = [n for n in report.neurons if n.raster is not None]
    if len(with_raster) <= count:
        return with_raster
    picks = np.unique(np.linspace(0, len(with_raster) - 1, count).round().astype(int))
    return [with_raster[i] for i in picks]


def plot_raster(report: SpikeReport, out_png: str, *, layers: list[NeuronStats] | None = None) -> str:
    """Spike rasters of example 0: a few evenly spaced neurons of each layer over the T time steps."""
    plt = _pyplot()
    chosen = layers if layers is not None else raster_layers(report)
    if not chosen:
        raise ValueError("the report has no spiking layers with a raster (is the model an ANN?)")
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen), 3.6), squeeze=False)
    for ax, layer in zip(axes[0], chosen):
        t_idx, n_idx = np.nonzero(layer.raster)  # raster is [T, K]
        ax.scatter(t_idx, n_idx, marker="|", s=120, color="black")
        ax.set(
            xlim=(-0.5, layer.raster.shape[0] - 0.5),
            ylim=(-0.5, layer.raster.shape[1] - 0.5),
            xlabel="time step",
            title=f"{_short(layer.path)}\nrate {layer.firing_rate:.3f}",
        )
        ax.set_xticks(range(layer.raster.shape[0]))
    axes[0][0].set_ylabel("neuron (evenly spaced sample)")
    fig.suptitle("spike raster, test example 0", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
