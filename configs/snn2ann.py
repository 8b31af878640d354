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
"""

from snnjax import config as config_lib
from snnjax import presets
from snnjax.methods.snn2ann import models as s2a_models

DIGITS_LAYERS = "1,1,M,2,2,M"  # 8x8 -> 4x4 -> 2x2
DIGITS_WIDTH = 16
DIGITS_EPOCHS = 20


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(
        arg,
        {
            "dataset": presets.DATASETS,
            "arch": ("vgg13", "resnet17"),
            "unit": ("resu", "stsu"),
            "arm": ("snn2ann", "bptt"),
        },
    )
    cfg = config_lib.base_config()
    cfg.pipeline = "snn2ann"
    cfg.arm = choice["arm"]
    arch = "resnet17" if choice["arch"] == "resnet17" else "vgg"
    cfg.model = s2a_models.model_config(name=f"{choice['arm']}_{arch}", mapping_unit=choice["unit"])
    if arch == "resnet17":
        cfg.model.time_steps = 5
        cfg.model.dropout = s2a_models.RESNET17_DROPOUT
    cfg.optim = config_lib.optim_config(
        name="adam", lr=1e-3, weight_decay=5e-4, schedule="multistep", milestones=(100, 150, 175), gamma=0.1
    )
    cfg.data.batch_size = 512
    presets.apply_dataset(cfg, choice["dataset"])
    if choice["dataset"] == "digits":
        cfg.data.batch_size = 64
        cfg.model.width = DIGITS_WIDTH
        cfg.train.epochs = DIGITS_EPOCHS
        if choice["arch"] == "vgg13":
            cfg.model.layers = DIGITS_LAYERS
            cfg.model.dropout = (0.0,)
    return cfg
