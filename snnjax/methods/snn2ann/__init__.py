"""SNN2ANN (Tang et al., Pattern Recognition; arXiv 2206.09449): train an SNN through an ANN
branch that shares its weights and computes on its spike counts.

- :mod:`~snnjax.methods.snn2ann.mapping`: STSU / ReSU spiking mapping units (straight-through).
- :mod:`~snnjax.methods.snn2ann.ata`: adaptive threshold adjustment against noisy spikes.
- :mod:`~snnjax.methods.snn2ann.layers`: the shared conv + BN layer and the IF neuron with its mapping unit.
- :mod:`~snnjax.methods.snn2ann.models`: VGG-style net and ResNet-17 (two branches), BPTT baseline net
  (model names ``snn2ann_vgg``, ``snn2ann_resnet17``, ``bptt_vgg``).
- :mod:`~snnjax.methods.snn2ann.step`: the train step (CE on the ANN branch, ATA, BN statistics).
- :mod:`~snnjax.methods.snn2ann.config`: ``validate``, the two-branch evaluation.
- :mod:`~snnjax.methods.snn2ann.pipeline`: ``run(config, workdir)``.
"""

from snnjax.methods.snn2ann.ata import AtaConfig, ata_update, noisy_spike_ratio
from snnjax.methods.snn2ann.config import validate
from snnjax.methods.snn2ann.layers import MappedIFNeuron, SharedConvBN
from snnjax.methods.snn2ann.mapping import resu, straight_through, stsu
from snnjax.methods.snn2ann.models import (
    BPTTVGG,
    NAMES,
    SNN2ANNVGG,
    BranchOutputs,
    SNN2ANNResNet,
    model_config,
    parse_layers,
)
from snnjax.methods.snn2ann.step import make_train_step

__all__ = [
    "AtaConfig",
    "BPTTVGG",
    "BranchOutputs",
    "MappedIFNeuron",
    "NAMES",
    "SNN2ANNResNet",
    "SNN2ANNVGG",
    "SharedConvBN",
    "ata_update",
    "make_train_step",
    "model_config",
    "noisy_spike_ratio",
    "parse_layers",
    "resu",
    "straight_through",
    "stsu",
    "validate",
]
