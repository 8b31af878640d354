"""Baseline: Spiking ResNet18 trained directly with surrogate gradients (no transplant, no KD).

    python launch.py --config configs/baseline.py:cifar10 --workdir runs/baseline_c10
    python launch.py --config configs/baseline.py:digits --workdir /tmp/baseline   # offline, minutes on a CPU

Presets: cifar10 (default), cifar100, digits, fashion_mnist (2-core CPU, 6,000 images: the IDSNN
ablation's size), fashion_mnist_60k (all 60,000 images, 3 epochs, cosine: 88.0 / 87.3 % in 18 min on a 2-core
CPU), fashion_mnist_full (GPU), mnist, mnist_60k, mnist_full, imagenet; their values:
``snnjax/methods/idsnn/config.py`` (``STUDENT``). Same as ``configs/idsnn.py:<dataset>,baseline`` but
without a teacher stage.
"""

from snnjax import config as config_lib
from snnjax import presets
from snnjax.methods.idsnn import config as idsnn_config


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(arg, {"dataset": presets.DATASETS})
    cfg = config_lib.base_config()
    cfg.model = idsnn_config.student_model()
    idsnn_config.apply_dataset(cfg, choice["dataset"])
    return cfg
