"""SNN2ANN (Tang et al., Pattern Recognition; arXiv 2206.09449): train an SNN through an ANN
branch that shares its weights and computes on its spike counts.

- :mod:`~snnjax.snn2ann.mapping`: STSU / ReSU spiking mapping units (straight-through).
- :mod:`~snnjax.snn2ann.ata`: adaptive threshold adjustment against noisy spikes.
- :mod:`~snnjax.snn2ann.layers`: the shared conv + BN layer and the IF neuron with its mapping unit.
- :mod:`~snnjax.snn2ann.models`: VGG-style net and ResNet-17 (two branches), BPTT baseline net.
- :mod:`~snnjax.snn2ann.step`: the train step (CE on the ANN branch, ATA, BN statistics).
"""

from snnjax.snn2ann.ata import AtaConfig, ata_update, noisy_spike_ratio
from snnjax.snn2ann.layers import MappedIFNeuron, SharedConvBN, fold_batch_norm
from snnjax.snn2ann.mapping import resu, straight_through, stsu
from snnjax.snn2ann.models import (ARCHS, BPTTVGG, BranchOutputs, SNN2ANNResNet, SNN2ANNVGG, build_model,
                                   model_config, parse_layers)
from snnjax.snn2ann.step import make_train_step

__all__ = ["ARCHS", "AtaConfig", "BPTTVGG", "BranchOutputs", "MappedIFNeuron", "SNN2ANNResNet", "SNN2ANNVGG",
           "SharedConvBN", "ata_update", "build_model", "fold_batch_norm", "make_train_step", "model_config",
           "noisy_spike_ratio", "parse_layers", "resu", "straight_through", "stsu"]
