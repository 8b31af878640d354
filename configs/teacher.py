"""ANN teacher: ResNet34 trained from scratch (IDSNN stage 1 on its own).

    python launch.py --config configs/teacher.py:cifar100 --workdir runs/teacher_c100
    python launch.py --config configs/teacher.py:digits --workdir /tmp/teacher     # offline, minutes on a CPU

Presets: cifar10 (default), cifar100, digits, fashion_mnist (2-core CPU: 6,000 images, 10 epochs),
fashion_mnist_60k (all 60,000 images, 5 epochs, cosine: 91.7 / 92.1 % in 14 min on a 2-core CPU),
fashion_mnist_full (GPU), mnist, mnist_60k, mnist_full, imagenet; their values:
``snnjax/methods/idsnn/config.py`` (``TEACHER``). Feed the workdir to IDSNN with
``--config.teacher.checkpoint=runs/teacher_c100``.
"""

from snnjax import config as config_lib
from snnjax import presets
from snnjax.methods.idsnn import config as idsnn_config


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(arg, {"dataset": presets.DATASETS})
    cfg = config_lib.base_config()
    cfg.model = idsnn_config.teacher_model()
    idsnn_config.apply_dataset(cfg, choice["dataset"], teacher=True)
    return cfg
