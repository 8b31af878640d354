"""Export trained snnjax models to other formats.

    from snnjax.export import write_nir
    write_nir("model.nir", model, state.variables, input_shape=(32, 32, 3))

Needs the optional ``nir`` package (imported only when an export runs).
"""

from snnjax.export.nir_export import NeuronSpec, export_resnet, neuron_node, write_nir

__all__ = ["NeuronSpec", "export_resnet", "neuron_node", "write_nir"]
