"""Pretraining as a bridge from ANNs to SNNs (Lin et al., TNNLS 2024): pipe-S and pipe-D.

    python launch.py --config configs/pretrain.py:pipe_s,digits --workdir /tmp/pipe_s      # offline, minutes on a CPU
    python launch.py --config configs/pretrain.py:pipe_d,digits --workdir /tmp/pipe_d      # digits -> digits_events
    python launch.py --config configs/pretrain.py:pipe_s,cifar10 --workdir runs/pipe_s_c10
    python launch.py --config configs/pretrain.py:pipe_d,cifar10 --workdir runs/pipe_d_c10 # CIFAR-10 -> cifar10_events
    python launch.py --config configs/pretrain.py:pipe_s,digits,scratch --workdir /tmp/s0  # no pretrained start

Presets (comma-separated, one per group; the first of each group is its default):
  pipe:       pipe_s (static -> static: load every tensor) | pipe_d (static ANN -> SNN on event
              frames; the first conv is re-initialised because the input has 2 polarity channels)
  dataset:    digits (offline) | cifar10 | fashion_mnist (2-core CPU) | fashion_mnist_full (GPU) |
              imagenet (pipe-S only: streamed imagenet2012 records, 224 crops, bf16; README pod section)
  arm:        pretrained | scratch (same fine-tuning from a fresh initialisation, for comparison)
  activation: sharpened (the official README's WSresnet18 ANN: clamp((u-a)/(b-a), 0, 1)) | relu
  mode:       pipe-D only: official (every loaded tensor frozen; new stem conv + BN and new FC
              trained with Adam 1e-3, wd 1e-4, 60 epochs, x0.1 at 20/30/40; Exp2
              example_cifar10_res_imgnet+WU.py) | full (everything trainable, stem BN and FC loaded,
              the pipe-S fine-tuning recipe)

Fine-tuning (pipe-S) as the official train_finetune.py: 50 epochs (digits and the CPU preset: 10 / 6),
SGD momentum 0.9, lr x0.3 at epochs 2/4/6/8, momentum buffers loaded from the pretraining
optimizer (``pretrain.load_optimizer_state``; lr and schedule start fresh).

Fashion-MNIST (ResNet18 width 16, T = 4, 6,000 images; docs/pretrain.md):
    python launch.py --config configs/pretrain.py:pipe_s,fashion_mnist --workdir /tmp/ps_fm
    python launch.py --config configs/pretrain.py:pipe_s,fashion_mnist,scratch --workdir /tmp/s0_fm
    python launch.py --config configs/pretrain.py:pipe_d,fashion_mnist --workdir /tmp/pd_fm --config.pretrain.checkpoint=/tmp/ps_fm
    python launch.py --config configs/pretrain.py:pipe_d,fashion_mnist,full --workdir /tmp/pdf_fm --config.pretrain.checkpoint=/tmp/ps_fm
        # time: ~4-7 min per 6-epoch arm on a 2-core CPU (IDSNN's measurement of the same
        # Spiking ResNet18 width 16, T = 4); not measured for these arms on 2026-12-01 (the shared
        # CPU gave 5-25 % of a core, see docs/pretrain.md)

Stage 1 trains the ANN twin of ``config.model`` (same topology and parameter names, ReLU, T = 1,
BN gamma initialised to ``pretrain.bn_scale_init`` = V_th 0.5) on ``pretrain.data`` (empty name:
``config.data``) with ``pretrain.optim`` / ``pretrain.train``; stage 2 copies its params and BN
statistics into the LIF SNN (``pretrain.reinit`` lists the modules left as initialised) and
fine-tunes with ``optim`` / ``train``. Reuse a finished pretraining with
``--config.pretrain.checkpoint=<workdir of an earlier pretrain.py run>``.
"""

import ml_collections

from snnjax import config as config_lib
from snnjax import presets
from snnjax.methods.pretrain import config as pretrain_config

PIPES = ("pipe_s", "pipe_d")
ARMS = ("pretrained", "scratch")
MODES = ("official", "full")


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(
        arg,
        {
            "pipe": PIPES,
            "dataset": pretrain_config.DATASETS,
            "arm": ARMS,
            "activation": pretrain_config.ACTIVATIONS,
            "mode": MODES,
        },
    )
    dataset = choice["dataset"]
    cfg = config_lib.base_config()
    cfg.pipeline = "pretrain"
    cfg.model = pretrain_config.snn_model()
    cfg.pretrain = pretrain_config.pretrain_section(dataset)
    cfg.pretrain.enabled = choice["arm"] == "pretrained"
    cfg.pretrain.activation = choice["activation"]
    presets.apply_dataset(cfg, dataset)  # data section, digits width/epochs/logging
    cfg.optim = pretrain_config.finetune_optim(dataset)
    cfg.train.epochs = pretrain_config.FINETUNE_EPOCHS[dataset]
    if dataset.startswith("fashion_mnist"):
        cfg.data.eval_batch_size = 500
        cfg.pretrain.train.log_every_steps = cfg.train.log_every_steps
        if dataset in ("fashion_mnist", "fashion_mnist_60k"):
            cfg.model.time_steps = 4  # the CPU presets' T (paper: 6)
    if dataset == "imagenet":
        if choice["pipe"] == "pipe_d":
            config_lib.fail("dataset", dataset, "pipe_d needs an event version of the data; use pipe_s,imagenet")
        # The official ImageNet ResNets define a max-pool but never call it.
        cfg.model.stem = "imagenet_nopool"
        cfg.pretrain.train.log_every_steps = cfg.train.log_every_steps
    if choice["pipe"] == "pipe_d":
        # The static source keeps the dataset's own section; the SNN fine-tunes on its event version.
        cfg.pretrain.data = ml_collections.ConfigDict(cfg.data.to_dict())
        cfg.data.name = pretrain_config.EVENT_DATA[dataset]
        cfg.data.options = ml_collections.ConfigDict()
        cfg.data.options.time_steps = cfg.model.get_ref("time_steps")  # frames per sample = T
        cfg.pretrain.reinit = "stem_conv"
        if choice["mode"] == "official":
            # Exp2 example_cifar10_res_imgnet+WU.py: new conv1 (+ its norm) and new FC, all else frozen.
            cfg.pretrain.reinit = "stem_conv,stem_bn,head"
            cfg.pretrain.freeze_loaded = True
            cfg.pretrain.load_optimizer_state = False  # a fresh Adam
            cfg.optim = config_lib.optim_config(
                name="adam", lr=1e-3, weight_decay=1e-4, schedule="multistep", milestones=(20, 30, 40), gamma=0.1
            )
            cfg.train.epochs = 60
            if dataset in ("digits", "fashion_mnist", "fashion_mnist_60k"):  # CPU sizes: the same shape, 6 epochs
                cfg.train.epochs = 6
                cfg.optim.milestones = (2, 3, 4)
    return cfg
