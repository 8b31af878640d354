"""SNN2ANN (Tang et al.): train an SNN through a weight-sharing ANN branch fed its spike counts.

    python launch.py --config configs/snn2ann.py:cifar100 --workdir runs/snn2ann_c100            # VGG-13, T=4
    python launch.py --config configs/snn2ann.py:cifar100,resnet17 --workdir runs/snn2ann_r17    # ResNet-17, T=5
    python launch.py --config configs/snn2ann.py:digits --workdir /tmp/snn2ann       # offline, minutes on a CPU
    python launch.py --config configs/snn2ann.py:digits,bptt --workdir /tmp/bptt     # the BPTT baseline

Presets (comma-separated, one per group):
  dataset: cifar10 (default) | cifar100 | digits
  arch:    vgg13 (default; digits: a 4-conv net) | resnet17
  unit:    resu (default) | stsu      (spiking mapping unit)
  arm:     snn2ann (default) | bptt   (bptt: the same SNN trained directly with surrogate gradients)
CIFAR setup of the paper / official code: Adam lr 1e-3, weight decay 5e-4, batch 512, 200 epochs,
lr x0.1 at epochs 100/150/175. ``best_test_accuracy`` in summary.json is the SNN branch's.

Official-code details (docs/snn2ann.md has the table): ``model.membrane_dropout`` 0.5 (dropout on
the IF membrane at every step in training), ``model.residual`` "current" (ResNet-17 identity
shortcuts add the previous block's input current), ``model.init`` "pytorch" (PyTorch's default
init, conv bias included), ``data.mean`` / ``data.std`` the official constants on CIFAR (empty:
the dataset's own statistics).

Fashion-MNIST: ``fashion_mnist`` (2-core CPU: width 16, 4 convs, 6,000-image subset, 6 epochs)
and ``fashion_mnist_full`` (GPU: VGG-13 at width 64 on all 60,000 images, the official schedule).
    python launch.py --config configs/snn2ann.py:fashion_mnist --workdir /tmp/s2a_fm --config.data.train_subset=2000
        # measured 2026-12-01 on a shared 2-core CPU (load ~19): 12-15 min wall per arm at 2,000 images
        # (19-23 training images/s with 5-25 % of a core); docs/snn2ann.md has the numbers
"""

from snnjax import config as config_lib
from snnjax import presets
from snnjax.methods.snn2ann import config as snn2ann_config
from snnjax.methods.snn2ann import models as s2a_models

DATASETS = presets.DATASETS


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(
        arg, {"dataset": DATASETS, "arch": ("vgg13", "resnet17"), "unit": ("resu", "stsu"), "arm": ("snn2ann", "bptt")}
    )
    cfg = config_lib.base_config()
    cfg.pipeline = "snn2ann"
    cfg.arm = choice["arm"]
    arch = "resnet17" if choice["arch"] == "resnet17" else "vgg"
    cfg.model = s2a_models.model_config(name=f"{choice['arm']}_{arch}", mapping_unit=choice["unit"])
    if arch == "resnet17":
        cfg.model.time_steps = 5
        cfg.model.dropout = s2a_models.RESNET17_DROPOUT
    cfg.optim = snn2ann_config.official_optim()
    presets.apply_dataset(cfg, choice["dataset"])
    snn2ann_config.apply_dataset(cfg, choice["dataset"], choice["arch"])
    return cfg
