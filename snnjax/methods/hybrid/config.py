"""Hybrid conversion + STDB config sections (``ann``, ``conversion``, ``data.normalization``) and validation."""

from __future__ import annotations

import ml_collections

from snnjax import config as config_lib
from snnjax import models
from snnjax.data.stats import NORMALIZATIONS
from snnjax.methods.hybrid import resnet, vgg
from snnjax.methods.hybrid.conversion import BALANCE_MODES, STATISTICS
from snnjax.train import stages

FRACTIONS = (0.6, 0.8, 0.9)  # the reference's lr steps, as fractions of a stage's epochs
BALANCE_KEYS = (
    "time_steps",
    "batch_size",
    "num_batches",
    "percentile",
    "time_chunk",
    "augment",
    "balance",
    "default_threshold",
    "statistic",
)
EVAL_KEYS = ("scaling_factor", "eval_time_steps", "eval_batch_size", "report_unscaled", "eval_examples")


def ann_section() -> ml_collections.ConfigDict:
    """``config.ann``: stage 1, the ANN (SGD without Nesterov as the official ann.py, lr 1e-2, wd 5e-4,
    300 epochs; conv dropout 0.2; its own input normalisation when ``normalization`` is set)."""
    return ml_collections.ConfigDict(
        dict(
            checkpoint="",
            dropout=0.2,  # ANN conv dropout (official ann.py 0.2; the SNN's model.dropout is 0.3); < 0 = the SNN's
            normalization="",  # "" = config.data.normalization; official CIFAR: "dataset" (SNN: symmetric)
            optim=config_lib.optim_config(
                name="sgd",
                lr=1e-2,
                momentum=0.9,
                nesterov=False,
                weight_decay=5e-4,
                schedule="multistep",
                milestones=(),
                milestone_fractions=FRACTIONS,
            ),
            train=config_lib.train_config(epochs=300),
        )
    )


def conversion_section() -> ml_collections.ConfigDict:
    """``config.conversion``: stage 2, threshold balancing and the accuracy-vs-T sweep."""
    return ml_collections.ConfigDict(
        dict(
            time_steps=1000,
            batch_size=512,
            num_batches=1,
            percentile=100.0,
            scaling_factor=0.7,
            time_chunk=100,
            eval_time_steps=(100, 200, 500, 1000),
            eval_batch_size=128,
            report_unscaled=True,
            eval_finetuned=False,
            finetune_spikes=False,  # also count the test set's spikes per image at model.time_steps after
            # every fine-tuning epoch (metrics.jsonl: test_spikes_per_image)
            augment=True,  # balancing batch drawn with the training augmentation (official: first
            # batch of the shuffled, augmented train loader); False: as stored
            eval_examples=0,  # test images of the conversion sweeps (0 = all)
            # Which layers balancing sets (snnjax.methods.hybrid.conversion): all (official VGG) |
            # stem (official ResNet: block thresholds stay at default_threshold) | residual (ResNet,
            # snnjax: all, with each block's conv2 rescaled by its conv1 threshold)
            balance="all",
            default_threshold=1.0,
            # spikes (official: max input current of a spiking simulation) | activations (Rueckauer
            # et al. 2017: the percentile of the ANN's activations, theta = lambda_l / lambda_input)
            statistic="spikes",
        )
    )


def with_milestone_fractions(optim: ml_collections.ConfigDict, epochs: int) -> ml_collections.ConfigDict:
    """``optim`` with multistep milestones at ``milestone_fractions`` of ``epochs`` (as the reference)."""
    out = ml_collections.ConfigDict(optim.to_dict())
    fractions = tuple(out.get("milestone_fractions", ()))
    if fractions:
        out.milestones = tuple(int(float(f) * epochs) for f in fractions)
    return out


def ann_model_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The ANN twin of ``config.model`` with the ANN's conv dropout ``config.ann.dropout`` (official:
    0.2 for the ANN, 0.3 for the SNN; < 0 keeps the SNN's rate)."""
    cfg = models.ann_model_config(config.model)
    if float(config.ann.get("dropout", -1.0)) >= 0.0:
        cfg.dropout = float(config.ann.dropout)
    return cfg


def ann_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The single-stage config of stage 1: the ANN twin of ``config.model``, ``ann.optim`` / ``ann.train``."""
    cfg = stages.sub_stage_config(
        config,
        model=ann_model_config(config),
        optim=with_milestone_fractions(config.ann.optim, int(config.ann.train.epochs)),
        train=config.ann.train,
    )
    # The official CIFAR code trains its ANN on the dataset's mean/std but runs the SNN on 0.5/0.5:
    # ann.normalization, when set, is the ANN stage's data.normalization (saved with its checkpoints).
    if config.ann.get("normalization", ""):
        cfg.data.normalization = config.ann.normalization
    return cfg


def stdb_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The single-stage config of stage 3 (STDB fine-tuning): ``config`` with its milestone fractions applied."""
    return stages.sub_stage_config(config, optim=with_milestone_fractions(config.optim, int(config.train.epochs)))


def ann_restore(config: ml_collections.ConfigDict) -> stages.Restore:
    return stages.Restore(
        config.ann.checkpoint,
        "config.ann.checkpoint",
        ("ann",),
        "ANN",
        "pass the --workdir of a hybrid_stdb run whose ANN stage finished (same model.name/width), or "
        "leave it empty to train the ANN here.",
    )


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Check the ``ann`` and ``conversion`` sections, ``data.normalization`` and the SNN of ``config.model``."""
    if cfg.model.name not in vgg.NAMES + resnet.NAMES:
        config_lib.fail(
            "model.name",
            cfg.model.name,
            f"the hybrid pipeline converts a BN-free VGG or ResNet: one of {list(vgg.NAMES + resnet.NAMES)}",
        )
    if cfg.model.neuron == "relu":
        config_lib.fail(
            "model.neuron",
            cfg.model.neuron,
            "config.model is the SNN of the hybrid pipeline: use 'if' or 'lif' (the ANN of stage 1 is derived from it)",
        )
    ann_normalization = cfg.ann.get("normalization", "")
    if ann_normalization and ann_normalization not in NORMALIZATIONS:
        config_lib.fail(
            "ann.normalization", ann_normalization, f"choose one of {list(NORMALIZATIONS)} or '' (= data.normalization)"
        )
    if not float(cfg.ann.get("dropout", -1.0)) < 1.0:
        config_lib.fail("ann.dropout", cfg.ann.dropout, "must be < 1 (< 0 = the SNN's model.dropout)")
    if int(cfg.conversion.get("eval_examples", 0)) < 0:
        config_lib.fail("conversion.eval_examples", cfg.conversion.eval_examples, "must be >= 0 (0 = all)")
    for name, optim in (("optim", cfg.optim), ("ann.optim", cfg.ann.optim)):
        fractions = tuple(optim.get("milestone_fractions", ()))
        if not all(0.0 < float(f) < 1.0 for f in fractions):
            config_lib.fail(f"{name}.milestone_fractions", fractions, "fractions must lie in (0, 1)")
    config_lib.validate_optim(cfg.ann.optim, "ann.optim")
    config_lib.validate_train(cfg.ann.train, "ann.train")
    c = cfg.conversion
    for key in ("time_steps", "batch_size", "num_batches", "eval_batch_size"):
        if int(c[key]) < 1:
            config_lib.fail(f"conversion.{key}", c[key], "must be >= 1")
    if not 0.0 < float(c.percentile) <= 100.0:
        config_lib.fail("conversion.percentile", c.percentile, "must be in (0, 100] (100 = max)")
    if not float(c.scaling_factor) > 0.0:
        config_lib.fail("conversion.scaling_factor", c.scaling_factor, "must be > 0 (reference: 0.7)")
    if int(c.time_chunk) < 0:
        config_lib.fail("conversion.time_chunk", c.time_chunk, "must be >= 0 (0 = no chunking)")
    balance = c.get("balance", "all")
    if balance not in BALANCE_MODES:
        config_lib.fail("conversion.balance", balance, f"choose one of {list(BALANCE_MODES)}")
    if balance != "all" and cfg.model.name not in resnet.NAMES:
        config_lib.fail(
            "conversion.balance", balance, f"'{balance}' is for the hybrid ResNets; a VGG balances 'all' layers"
        )
    if c.get("statistic", "spikes") not in STATISTICS:
        config_lib.fail("conversion.statistic", c.statistic, f"choose one of {list(STATISTICS)}")
    if not float(c.get("default_threshold", 1.0)) > 0.0:
        config_lib.fail("conversion.default_threshold", c.default_threshold, "must be > 0 (official: 1.0)")
    sweep = [int(t) for t in c.eval_time_steps]
    if not sweep or sweep[0] < 1 or any(b <= a for a, b in zip(sweep, sweep[1:])):
        config_lib.fail(
            "conversion.eval_time_steps", tuple(c.eval_time_steps), "must be increasing positive ints, e.g. (8,16,32)"
        )
    if int(cfg.model.time_steps) not in sweep:
        config_lib.fail(
            "model.time_steps",
            cfg.model.time_steps,
            f"the fine-tuning T must be one of conversion.eval_time_steps {tuple(sweep)} (the converted SNN at "
            "the same T is its reference); add it to the sweep or pick one of them",
        )


# ---------------------------------------------------------------------------------------------
# fashion_mnist_60k: the claim test on all of Fashion-MNIST (docs/hybrid_stdb.md, "60k").
# ---------------------------------------------------------------------------------------------

SWEEP_60K = (8, 16, 32, 64, 128, 256, 512)  # converted SNN: every T read off one 512-step simulation
FINETUNE_T_60K = {"vgg": 8, "resnet20": 16}  # T_s: 8x T_s (64, 128) is in the sweep
STDB_EPOCHS_60K = 5


def apply_fashion_mnist_60k(cfg: ml_collections.ConfigDict, arch: str) -> None:
    """All 60,000 training and 10,000 test images, sized for the 2-core CPU (in place).

    Differences from the official recipe, each for an ANN that trains properly in a CPU budget:
    width 16 (VGG5: 16-32-32 channels, 1,024 hidden units), He init of the linear layers, ANN conv
    dropout 0.1 (official 0.2) and a cosine learning rate from 0.05 over ``ann.train.epochs`` (official:
    lr 1e-2, x0.1 at 60/80/90 % of 300 epochs); the library's spike timing (``spike_delay`` False: a
    layer fires in the step its input arrives; the official one-step delay per layer would spend
    5 of the 8 fine-tuning steps on latency). Balancing as the official VGG code (max input current of
    a 256-step spiking simulation on 512 training images; thresholds x0.7).
    """
    cfg.data.train_subset = 0
    cfg.data.eval_batch_size = 500
    cfg.model.dense_init = "he"
    cfg.model.spike_delay = False
    cfg.model.time_steps = FINETUNE_T_60K[arch]
    cfg.ann.dropout = 0.1
    cfg.ann.optim.lr = 0.05
    cfg.ann.optim.schedule = "cosine"
    cfg.ann.optim.milestone_fractions = ()
    cfg.ann.train.epochs = 20
    cfg.ann.train.log_every_steps = 200
    cfg.train.epochs = STDB_EPOCHS_60K
    cfg.train.log_every_steps = 100
    cfg.conversion.time_steps = 256
    cfg.conversion.batch_size = 512
    cfg.conversion.time_chunk = 64  # memory: a 512-step simulation of 500 images in 8 pieces
    cfg.conversion.scaling_factor = 0.7
    cfg.conversion.eval_time_steps = SWEEP_60K
    cfg.conversion.eval_batch_size = 500
    cfg.conversion.eval_examples = 0
    cfg.conversion.report_unscaled = False
    cfg.conversion.eval_finetuned = False  # the fine-tuned SNN is tested at T_s after every epoch
    cfg.conversion.finetune_spikes = True


def apply_fashion_mnist_60k_resnet(cfg: ml_collections.ConfigDict, arch: str) -> None:
    """``fashion_mnist_60k`` with the BN-free hybrid ResNet ``arch`` (after :func:`apply_fashion_mnist_60k`).

    Width 8 (stem 8 channels, stages 8-64), T_s = 16, and the balancing that reaches the ANN at the
    T a CPU affords (docs/hybrid_stdb.md, ResNet section): thresholds from the ANN's activations
    (99.9th percentile), each block's conv2 rescaled onto its shortcut's scale, unscaled.
    """
    cfg.model.width = 8
    cfg.model.dense_init = "he"
    cfg.model.spike_delay = False
    cfg.model.time_steps = FINETUNE_T_60K[arch] if arch in FINETUNE_T_60K else 16
    cfg.conversion.statistic = "activations"
    cfg.conversion.balance = "residual"
    cfg.conversion.percentile = 99.9
    cfg.conversion.scaling_factor = 1.0
    cfg.conversion.time_steps = 128
    cfg.conversion.batch_size = 128
