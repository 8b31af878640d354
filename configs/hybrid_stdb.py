"""Hybrid conversion + STDB (Rathi et al., ICLR 2020): VGG ANN -> threshold balancing -> STDB fine-tuning.

    python launch.py --config configs/hybrid_stdb.py:cifar10 --workdir runs/hybrid_c10     # VGG16, T=100
    python launch.py --config configs/hybrid_stdb.py:digits --workdir /tmp/hybrid          # offline, minutes on a CPU
    python launch.py --config configs/hybrid_stdb.py:digits --config.model.surrogate=linear --workdir /tmp/hl
    python launch.py --config configs/hybrid_stdb.py:cifar10,resnet20 --workdir runs/hybrid_r20  # BN-free ResNet20

Presets (comma-separated, one per group):
  dataset: cifar10 (default; VGG16, ANN 300 epochs, balancing at T=1000, thresholds x0.7, fine-tuning
           at T=100 for 20 epochs) | cifar100 | digits (VGG5 at width 16, 8x8 inputs in [0, 1], ANN
           30 epochs, balancing at T=256, converted SNN reported at T = 8..128, STDB at T=16 for 10
           epochs) | fashion_mnist | fashion_mnist_60k | fashion_mnist_full (below)
  arch:    vgg (default: the dataset's VGG) | resnet12 | resnet20 | resnet34 (the official BN-free
           ResNets; CPU presets at width 8)
Reuse a trained ANN with ``--config.ann.checkpoint=<workdir>``.

Fashion-MNIST (VGG5, pixels in [0, 1] for ANN and SNN as the official MNIST branch):
    python launch.py --config configs/hybrid_stdb.py:fashion_mnist --workdir /tmp/hybrid_fm --config.seed=0
        # 2-core CPU: width 16, 6,000-image subset, ANN 8 epochs, balancing T=64, STDB 2 epochs at T=16;
        # measured 2026-12-01 on a shared 2-core CPU (load 13-18): 31 min wall (docs/hybrid_stdb.md)
    python launch.py --config configs/hybrid_stdb.py:fashion_mnist_full --workdir runs/hybrid_fm   # GPU sized
    python launch.py --config configs/hybrid_stdb.py:fashion_mnist_60k --workdir runs/hybrid_60k  # all 60k, CPU sized
        # the claim test of docs/hybrid_stdb.md: VGG5 width 16, sweep T = 8..512, STDB 5 epochs at T = 8

The sections, the official-code details and every preset's values (each explained in its row):
``snnjax/methods/hybrid/config.py``; docs/hybrid_stdb.md has the table against the official code.
"""

from snnjax import config as config_lib
from snnjax.methods.hybrid import config as hybrid_config


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(arg, {"dataset": hybrid_config.DATASETS, "arch": hybrid_config.ARCHS})
    cfg = config_lib.base_config()
    cfg.pipeline = "hybrid_stdb"
    cfg.model = hybrid_config.snn_model()
    cfg.optim = hybrid_config.stdb_optim()
    cfg.train = hybrid_config.stdb_train()
    cfg.ann = hybrid_config.ann_section()
    cfg.conversion = hybrid_config.conversion_section()
    return hybrid_config.apply_preset(cfg, choice["dataset"], choice["arch"])
