"""Model zoo: one ResNet definition for ANNs and SNNs, and one registry for every family.

``build(config.model, num_classes)`` builds any registered model by name (ResNet/SEW here, the
hybrid method's VGG and the SNN2ANN nets in their method folders); see :mod:`snnjax.models.registry`.
"""

from snnjax.models.factory import MODEL_NAMES, NEURONS, build_model, make_activation, model_config
from snnjax.models.initializers import INITS
from snnjax.models.registry import ann_model_config, build, names, upgrade_legacy, validate
from snnjax.models.resnet import BasicBlock, Bottleneck, ResNet, resnet

__all__ = [
    "INITS",
    "MODEL_NAMES",
    "NEURONS",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "ann_model_config",
    "build",
    "build_model",
    "make_activation",
    "model_config",
    "names",
    "resnet",
    "upgrade_legacy",
    "validate",
]
