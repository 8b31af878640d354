"""Hybrid conversion + STDB (Rathi et al., ICLR 2020): VGG ANN -> threshold balancing -> STDB fine-tuning.

- :mod:`~snnjax.methods.hybrid.vgg`: one VGG for the ANN and the SNN (model names ``vgg5`` .. ``vgg19``).
- :mod:`~snnjax.methods.hybrid.resnet`: the official BN-free ResNets (``hybrid_resnet6/12/20/34``).
- :mod:`~snnjax.methods.hybrid.neuron`: the soft-reset IF/LIF neuron with a per-layer threshold and
  the spike-timing-dependent surrogate (:func:`snnjax.surrogates.stdb`).
- :mod:`~snnjax.methods.hybrid.conversion`: threshold balancing, the accuracy-vs-T sweep.
- :mod:`~snnjax.methods.hybrid.config`: the ``ann`` / ``conversion`` sections, ``validate``.
- :mod:`~snnjax.methods.hybrid.pipeline`: ``run(config, workdir)``.
"""

from snnjax.methods.hybrid.config import validate
from snnjax.methods.hybrid.conversion import (
    BalanceSettings,
    accuracy_over_time,
    balance_thresholds,
    scale_thresholds,
    snn_variables,
)
from snnjax.methods.hybrid.neuron import HybridNeuron, if_neurons
from snnjax.methods.hybrid.resnet import HybridResNet, resnet_config
from snnjax.methods.hybrid.vgg import VGG, vgg_config

__all__ = [
    "BalanceSettings",
    "HybridNeuron",
    "HybridResNet",
    "VGG",
    "accuracy_over_time",
    "balance_thresholds",
    "if_neurons",
    "resnet_config",
    "scale_thresholds",
    "snn_variables",
    "validate",
    "vgg_config",
]
