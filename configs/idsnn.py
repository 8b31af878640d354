"""IDSNN: ResNet34 ANN teacher -> transplant into Spiking ResNet18 -> train with KD (the flagship).

    python launch.py --config configs/idsnn.py --workdir runs/idsnn_c10           # CIFAR-10, T=4
    python launch.py --config configs/idsnn.py:cifar100 --config.model.time_steps=6 --workdir runs/idsnn_c100
    python launch.py --config configs/idsnn.py:digits --workdir /tmp/idsnn        # offline, minutes on a CPU
    python launch.py --config configs/idsnn.py:digits,kd_only --workdir /tmp/kd   # an ablation arm
    python launch.py --config configs/idsnn.py:fashion_mnist --workdir runs/f     # apt-get install dataset-fashion-mnist

Presets (comma-separated, one per group):
  dataset: cifar10 (default) | cifar100 | digits | fashion_mnist (2-core CPU) | fashion_mnist_full (GPU)
           | mnist | mnist_full
  arm:     idsnn (default: init + KD) | baseline | init_only | kd_only
  decay:   decay60 (default, lr x0.1 at 60/120/160) | decay20 | decay10 (the paper's convergence
           study: lr x0.1 every 20 / 10 epochs)
Reuse a trained teacher with ``--config.teacher.checkpoint=<teacher workdir>``; initialise from a
different ANN than the KD teacher (the official code uses two checkpoints) with
``--config.transplant.checkpoint=<teacher.py workdir>`` (any ResNet depth/width, e.g. a same-depth
ResNet18: ``configs/teacher.py:fashion_mnist --config.model.name=resnet18``).
"""

import ml_collections

from snnjax import presets
from snnjax import config as config_lib

ARMS = {"idsnn": (True, True), "baseline": (False, False), "init_only": (True, False), "kd_only": (False, True)}
# KD weight per arm, as in the official code: train_kd.py (KD only) uses 0.5, the IDSNN script 0.3.
KD_ALPHA = {"idsnn": 0.3, "baseline": 0.3, "init_only": 0.3, "kd_only": 0.5}


def get_config(arg: str | None = None):
    choice = config_lib.parse_presets(arg, {"dataset": presets.DATASETS, "arm": tuple(ARMS),
                                            "decay": ("decay60", "decay20", "decay10")})
    cfg = config_lib.base_config()
    cfg.pipeline = "idsnn"
    init, kd = ARMS[choice["arm"]]
    cfg.kd = config_lib.kd_config(enabled=kd, temperature=4.0, alpha=KD_ALPHA[choice["arm"]])
    cfg.model.init = "pytorch"     # the official code has no init code: PyTorch's defaults
    cfg.transplant = ml_collections.ConfigDict(dict(
        enabled=init, block_rule="first", include_stem=True, include_shortcut=False, include_head=False,
        checkpoint=""))   # workdir of another finished ANN run to transplant from; "" = the KD teacher
    cfg.teacher = ml_collections.ConfigDict(dict(
        checkpoint="",    # workdir of a finished teacher run; "" trains the teacher as stage 1
        model=presets.teacher_model(init="pytorch"),
        optim=config_lib.optim_config(),
        train=config_lib.train_config(),
    ))
    presets.apply_dataset(cfg, choice["dataset"])
    presets.apply_dataset(cfg.teacher, choice["dataset"], teacher=True)
    if choice["decay"] != "decay60":
        cfg.optim.schedule = "step"
        cfg.optim.step_epochs = int(choice["decay"][len("decay"):])
    return cfg
