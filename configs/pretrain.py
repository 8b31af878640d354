"""Pretraining as a bridge from ANNs to SNNs (Lin et al., TNNLS 2024): pipe-S and pipe-D.

    python launch.py --config configs/pretrain.py:pipe_s,digits --workdir /tmp/pipe_s      # offline, minutes on a CPU
    python launch.py --config configs/pretrain.py:pipe_d,digits --workdir /tmp/pipe_d      # digits -> digits_events
    python launch.py --config configs/pretrain.py:pipe_s,cifar10 --workdir runs/pipe_s_c10
    python launch.py --config configs/pretrain.py:pipe_d,cifar10 --workdir runs/pipe_d_c10 # CIFAR-10 -> cifar10_events
    python launch.py --config configs/pretrain.py:pipe_s,digits,scratch --workdir /tmp/s0  # no pretrained start

Presets (comma-separated, one per group; the first of each group is its default):
  pipe:       pipe_s (static -> static: load every tensor) | pipe_d (static ANN -> SNN on event
              frames; the first conv is re-initialised because the input has 2 polarity channels)
  dataset:    digits (offline) | cifar10 | fashion_mnist (2-core CPU) | fashion_mnist_60k (all 60,000
              images, CPU) | fashion_mnist_full (GPU) | imagenet (pipe-S only: streamed imagenet2012
              records, 224 crops, bf16; docs/running.md, pod section)
  arm:        pretrained | scratch (same fine-tuning from a fresh initialisation, for comparison)
  activation: sharpened (the official README's WSresnet18 ANN: clamp((u-a)/(b-a), 0, 1)) | relu
  mode:       pipe-D only: official (every loaded tensor frozen; new stem conv + BN and new FC
              trained with Adam, 60 epochs; CPU presets 6) | full (everything trainable, stem BN and
              FC loaded, the pipe-S fine-tuning recipe)
The stages, the official recipes and every preset's values: ``snnjax/methods/pretrain/config.py``.
Reuse a finished pretraining with ``--config.pretrain.checkpoint=<workdir of an earlier pretrain.py run>``.

Fashion-MNIST (ResNet18 width 16, T = 4, 6,000 images; docs/pretrain.md):
    python launch.py --config configs/pretrain.py:pipe_s,fashion_mnist --workdir /tmp/ps_fm
    python launch.py --config configs/pretrain.py:pipe_s,fashion_mnist,scratch --workdir /tmp/s0_fm
    python launch.py --config configs/pretrain.py:pipe_d,fashion_mnist --workdir /tmp/pd_fm --config.pretrain.checkpoint=/tmp/ps_fm
    python launch.py --config configs/pretrain.py:pipe_d,fashion_mnist,full --workdir /tmp/pdf_fm --config.pretrain.checkpoint=/tmp/ps_fm
        # time: ~4-7 min per 6-epoch arm on a 2-core CPU (IDSNN's measurement of the same
        # Spiking ResNet18 width 16, T = 4); not measured for these arms on 2026-12-01 (the shared
        # CPU gave 5-25 % of a core, see docs/pretrain.md)
"""

from snnjax import config as config_lib
from snnjax.methods.pretrain import config as pretrain_config


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(
        arg,
        {
            "pipe": pretrain_config.PIPES,
            "dataset": pretrain_config.DATASETS,
            "arm": pretrain_config.ARMS,
            "activation": pretrain_config.ACTIVATIONS,
            "mode": pretrain_config.MODES,
        },
    )
    cfg = config_lib.base_config()
    cfg.pipeline = "pretrain"
    cfg.model = pretrain_config.snn_model()
    cfg.pretrain = pretrain_config.pretrain_section()
    cfg.optim = pretrain_config.finetune_optim()
    return pretrain_config.apply_preset(cfg, **choice)
