"""Pretraining as a bridge from ANNs to SNNs (Lin et al., TNNLS 2024): pipe-S and pipe-D.

    python launch.py --config configs/pretrain.py:pipe_s,digits --workdir /tmp/pipe_s      # offline, minutes on a CPU
    python launch.py --config configs/pretrain.py:pipe_d,digits --workdir /tmp/pipe_d      # digits -> digits_events
    python launch.py --config configs/pretrain.py:pipe_s,cifar10 --workdir runs/pipe_s_c10
    python launch.py --config configs/pretrain.py:pipe_d,cifar10 --workdir runs/pipe_d_c10 # CIFAR-10 -> cifar10_events
    python launch.py --config configs/pretrain.py:pipe_s,digits,scratch --workdir /tmp/s0  # no pretrained start

Presets (comma-separated, one per group; the first of each group is its default):
  pipe:       pipe_s (static -> static: load every tensor) | pipe_d (static ANN -> SNN on event
              frames; the first conv is re-initialised because the input has 2 polarity channels)
  dataset:    digits (offline) | cifar10
  arm:        pretrained | scratch (same fine-tuning from a fresh initialisation, for comparison)
  activation: relu | sharpened (the ANN's "sharpened ReLU" clamp((u-a)/(b-a), 0, 1))

Stage 1 trains the ANN twin of ``config.model`` (same topology and parameter names, ReLU, T = 1,
BN gamma initialised to ``pretrain.bn_scale_init`` = V_th 0.5) on ``pretrain.data`` (empty name:
``config.data``) with ``pretrain.optim`` / ``pretrain.train``; stage 2 copies its params and BN
statistics into the LIF SNN (``pretrain.reinit`` lists the modules left as initialised) and
fine-tunes with ``optim`` / ``train``. Reuse a finished pretraining with
``--config.pretrain.checkpoint=<workdir of an earlier pretrain.py run>``.
"""

import ml_collections

from snnjax import config as config_lib
from snnjax import models, presets
from snnjax.methods.pretrain import config as pretrain_config

PIPES = ("pipe_s", "pipe_d")
DATASETS = ("digits", "cifar10")
ARMS = ("pretrained", "scratch")
ACTIVATIONS = pretrain_config.ACTIVATIONS
EVENT_DATA = {"digits": "digits_events", "cifar10": "cifar10_events"}

# The official scripts (lyh983012/SNN-ANN-Pretrain): SGD momentum 0.9, no weight decay, lr 0.1 at
# batch 256 (0.025 at our batch 64, linear scaling); pretraining at a constant lr for 100 epochs,
# fine-tuning with lr x0.3 at epochs 2, 4, 6, 8.
FINETUNE_MILESTONES = (2, 4, 6, 8)


def snn_model(**overrides) -> ml_collections.ConfigDict:
    """The paper's LIF SNN: decay 0.25, hard reset, V_th 0.5, rectangular surrogate, T = 6."""
    return models.model_config(
        name="resnet18",
        neuron="lif",
        time_steps=6,
        decay=0.25,
        v_threshold=0.5,
        reset="hard",
        surrogate="rectangular",
        surrogate_param=1.0,
        **overrides,
    )


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(arg, {"pipe": PIPES, "dataset": DATASETS, "arm": ARMS, "activation": ACTIVATIONS})
    dataset = choice["dataset"]
    digits = dataset == "digits"
    cfg = config_lib.base_config()
    cfg.pipeline = "pretrain"
    cfg.model = snn_model()
    cfg.pretrain = pretrain_config.pretrain_section(dataset)
    cfg.pretrain.enabled = choice["arm"] == "pretrained"
    cfg.pretrain.activation = choice["activation"]
    presets.apply_dataset(cfg, dataset)  # data section, digits width/epochs/logging
    cfg.optim = config_lib.optim_config(
        lr=0.05 if digits else 0.025, weight_decay=0.0, schedule="multistep", milestones=FINETUNE_MILESTONES, gamma=0.3
    )
    cfg.train.epochs = 10
    if choice["pipe"] == "pipe_d":
        # The static source keeps the dataset's own section; the SNN fine-tunes on its event version.
        cfg.pretrain.data = ml_collections.ConfigDict(cfg.data.to_dict())
        cfg.data.name = EVENT_DATA[dataset]
        cfg.data.options = ml_collections.ConfigDict()
        cfg.data.options.time_steps = cfg.model.get_ref("time_steps")  # frames per sample = T
        cfg.pretrain.reinit = "stem_conv"
    return cfg
