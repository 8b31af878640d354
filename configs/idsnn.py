"""IDSNN: ResNet34 ANN teacher -> transplant into Spiking ResNet18 -> train with KD (the flagship).

    python launch.py --config configs/idsnn.py --workdir runs/idsnn_c10           # CIFAR-10, T=4
    python launch.py --config configs/idsnn.py:cifar100 --config.model.time_steps=6 --workdir runs/idsnn_c100
    python launch.py --config configs/idsnn.py:digits --workdir /tmp/idsnn        # offline, minutes on a CPU
    python launch.py --config configs/idsnn.py:digits,kd_only --workdir /tmp/kd   # an ablation arm

Presets (comma-separated, one per group):
  dataset: cifar10 (default) | cifar100 | digits | fashion_mnist (2-core CPU ablation: 6,000
           images, 6 epochs) | fashion_mnist_60k (CPU widths on all 60,000 images, 3 epochs, cosine)
           | fashion_mnist_full (GPU: width 64, 100 epochs) | mnist | mnist_60k | mnist_full | imagenet
           (streamed imagenet2012 records, torchvision's recipe, bf16; docs/running.md, pod section)
  arm:     idsnn (default: init + KD) | baseline | init_only | kd_only
  decay:   decay60 (default, lr x0.1 at 60/120/160) | decay20 | decay10 (the paper's convergence
           study: lr x0.1 every 20 / 10 epochs)
Reuse a trained teacher with ``--config.teacher.checkpoint=<teacher workdir>``; initialise from a
different ANN than the KD teacher (the official code uses two checkpoints) with
``--config.transplant.checkpoint=<teacher.py workdir>`` (any ResNet depth/width, e.g. a same-depth
ResNet18: ``configs/teacher.py:fashion_mnist --config.model.name=resnet18``). Every preset's values,
with the measured times of the CPU presets: ``snnjax/methods/idsnn/config.py``.
"""

from snnjax import config as config_lib
from snnjax import presets
from snnjax.methods.idsnn import config as idsnn_config


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(
        arg, {"dataset": presets.DATASETS, "arm": idsnn_config.ARM_PRESETS, "decay": tuple(idsnn_config.DECAYS)}
    )
    cfg = config_lib.base_config()
    cfg.pipeline = "idsnn"
    cfg.kd = config_lib.kd_config()
    cfg.model = idsnn_config.student_model()
    cfg.transplant = idsnn_config.transplant_section()
    cfg.teacher = idsnn_config.teacher_section()
    idsnn_config.apply_arm(cfg, choice["arm"])
    idsnn_config.apply_dataset(cfg, choice["dataset"])
    idsnn_config.apply_dataset(cfg.teacher, choice["dataset"], teacher=True)
    presets.apply(cfg, idsnn_config.DECAYS[choice["decay"]])
    return cfg
