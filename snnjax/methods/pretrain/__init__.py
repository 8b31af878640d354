"""Pretraining as a bridge from ANNs to SNNs (Lin et al., TNNLS 2024): pipe-S (static) and pipe-D (events).

- :mod:`~snnjax.methods.pretrain.sharpened`: the sharpened ReLU of the ANN (pipe-S option).
- :mod:`~snnjax.methods.pretrain.transfer`: the ANN twin, the ANN -> SNN tree copy.
- :mod:`~snnjax.methods.pretrain.config`: the ``pretrain`` section, ``validate``.
- :mod:`~snnjax.methods.pretrain.pipeline`: ``run(config, workdir)``.
"""

from snnjax.methods.pretrain.config import pretrain_section, validate
from snnjax.methods.pretrain.sharpened import SharpenedReLU
from snnjax.methods.pretrain.transfer import (
    build_ann,
    load_pretrained,
    sharpen_horizon,
    transfer_counts,
)

__all__ = [
    "SharpenedReLU",
    "build_ann",
    "load_pretrained",
    "pretrain_section",
    "sharpen_horizon",
    "transfer_counts",
    "validate",
]
