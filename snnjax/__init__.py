"""snnjax: train deep spiking neural networks fast by transferring knowledge from ANNs."""

from snnjax import layers, neurons, surrogates

__version__ = "0.1.0"
__all__ = ["layers", "neurons", "surrogates", "__version__"]
