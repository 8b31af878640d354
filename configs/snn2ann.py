"""SNN2ANN (Tang et al.): train an SNN through a weight-sharing ANN branch fed its spike counts.

    python launch.py --config configs/snn2ann.py:cifar100 --workdir runs/snn2ann_c100            # VGG-13, T=4
    python launch.py --config configs/snn2ann.py:cifar100,resnet17 --workdir runs/snn2ann_r17    # ResNet-17, T=5
    python launch.py --config configs/snn2ann.py:digits --workdir /tmp/snn2ann       # offline, minutes on a CPU
    python launch.py --config configs/snn2ann.py:digits,bptt --workdir /tmp/bptt     # the BPTT baseline

Presets (comma-separated, one per group):
  dataset: cifar10 (default) | cifar100 | digits | fashion_mnist | fashion_mnist_60k | fashion_mnist_full
           (below); accepted but not tuned for SNN2ANN: mnist, mnist_60k, mnist_full, imagenet
  arch:    vgg13 (default; digits: a 4-conv net) | resnet17
  unit:    resu (default) | stsu      (spiking mapping unit)
  arm:     snn2ann (default) | bptt   (bptt: the same SNN trained directly with surrogate gradients)
CIFAR setup of the paper / official code: Adam lr 1e-3, weight decay 5e-4, batch 512, 200 epochs,
lr x0.1 at epochs 100/150/175. ``best_test_accuracy`` in summary.json is the SNN branch's. The values
of every preset, and the official-code details: ``snnjax/methods/snn2ann/config.py`` (docs/snn2ann.md).

Fashion-MNIST: ``fashion_mnist`` (2-core CPU: width 16, 4 convs, 6,000-image subset, 6 epochs),
``fashion_mnist_60k`` (the CPU net on all 60,000 images, T = 8, 8 epochs, cosine) and
``fashion_mnist_full`` (GPU: VGG-13 at width 64 on all 60,000 images, the official schedule).
    python launch.py --config configs/snn2ann.py:fashion_mnist --workdir /tmp/s2a_fm --config.data.train_subset=2000
        # measured 2026-12-01 on a shared 2-core CPU (load ~19): 12-15 min wall per arm at 2,000 images
        # (19-23 training images/s with 5-25 % of a core); docs/snn2ann.md has the numbers
"""

from snnjax import config as config_lib
from snnjax import presets
from snnjax.methods.snn2ann import config as snn2ann_config


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(
        arg,
        {
            "dataset": presets.DATASETS,
            "arch": snn2ann_config.ARCH_PRESETS,
            "unit": snn2ann_config.UNITS,
            "arm": snn2ann_config.ARMS,
        },
    )
    cfg = config_lib.base_config()
    cfg.pipeline = "snn2ann"
    cfg.arm = choice["arm"]
    cfg.model = snn2ann_config.model_config(choice["arm"], choice["arch"], choice["unit"])
    cfg.optim = snn2ann_config.official_optim()
    snn2ann_config.apply_dataset(cfg, choice["dataset"], choice["arch"])
    return cfg
