"""Model zoo: one ResNet (and VGG) definition for ANNs and SNNs, built from a config."""

from snnjax.models.factory import MODEL_NAMES, NEURONS, build_model, make_activation, model_config
from snnjax.models.initializers import INITS
from snnjax.models.resnet import BasicBlock, Bottleneck, ResNet, resnet

__all__ = ["INITS", "MODEL_NAMES", "NEURONS", "BasicBlock", "Bottleneck", "ResNet", "build_model", "make_activation",
           "model_config", "resnet"]
