"""The run-config sections shared by every pipeline, and their validation.

Every ``configs/*.py`` file starts from :func:`base_config` and sets its pipeline's keys and
presets. Configs are locked ``ml_collections.ConfigDict`` objects, so a misspelt override
(``--config.optim.learning_rate=...``) fails at once and lists the keys that exist. Defaults are the
official IDSNN hyperparameters (design section 6.4).
"""

from __future__ import annotations

import math
from collections.abc import Collection

import ml_collections

from snnjax import losses, models
from snnjax.data.from_config import data_config  # the data section's defaults live with its reader
from snnjax.train import optim

NONFINITE = ("stop", "skip")
THROUGH_TIME = ("bptt", "sltt")  # train.through_time: how gradients flow through time (snnjax.train.sltt)
SLTT_PIPELINES = ("train", "idsnn")  # pipelines whose SNN stage trains with the default step
SLTT_NEURONS = ("lif", "if", "plif")


def optim_config(**overrides) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict(
        dict(
            name="sgd",
            lr=0.05,
            momentum=0.9,
            nesterov=False,
            weight_decay=1e-4,
            schedule="multistep",
            milestones=(60, 120, 160),
            gamma=0.1,
            step_epochs=60,
            warmup_epochs=0,
        )
    )
    cfg.update(overrides)
    return cfg


def train_config(**overrides) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict(
        dict(
            epochs=200,
            log_every_steps=50,
            eval_every_epochs=1,
            checkpoint_every_steps=0,  # 0: checkpoint at epoch ends only
            keep_checkpoints=2,  # latest N kept, plus the best by test accuracy
            nonfinite="stop",  # stop | skip (skip the update of a non-finite step)
            progress_bar=True,
            tensorboard=True,
            stop_after_steps=0,  # >0: exit after this many steps of this process (preemption drills)
            stop_at_accuracy=0.0,  # >0: the stage ends after the first epoch whose test accuracy reaches it
            stop_on_plateau_epochs=0,  # >0: ... or once test accuracy gained < stop_on_plateau_gain over this many epochs
            stop_on_plateau_gain=0.003,  # (0.3 points: the pretraining issue's rule for its scratch SNNs)
            min_free_disk_mb=200,  # refuse to start with less free space in the workdir
            loss="ce",  # ce | tet (TET, Deng et al. 2022: per-time-step CE + MSE regulariser; spiking models)
            tet_lambda=losses.TET_LAMBDA,  # TET's lambda: weight of the MSE term (official code: 1e-3)
            tet_target=losses.TET_TARGET,  # TET's phi: the value the MSE term pulls the logits to (official: 1.0)
            through_time="bptt",  # bptt | sltt (spatial gradients only, memory flat in T: snnjax.train.sltt)
            sltt_k=0,  # sltt: backpropagate at K random steps of T per iteration (0 = all T)
            sltt_unroll=False,  # sltt: unroll the time loop (XLA:CPU ~10x faster; memory then grows with T)
        )
    )
    cfg.update(overrides)
    return cfg


def kd_config(**overrides) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict(dict(enabled=False, temperature=losses.KD_TEMPERATURE, alpha=losses.KD_ALPHA))
    cfg.update(overrides)
    return cfg


def base_config() -> ml_collections.ConfigDict:
    """A single-stage training run (``pipeline="train"``): IDSNN's baseline Spiking ResNet18."""
    cfg = ml_collections.ConfigDict()
    cfg.pipeline = "train"
    cfg.seed = 445
    cfg.data = data_config()
    cfg.model = models.model_config()
    cfg.optim = optim_config()
    cfg.train = train_config()
    cfg.kd = kd_config()
    # >0: every stage's ``train.epochs`` (teacher, ANN, pretraining, student, ...) is set to this by the
    # launcher, for quick trials; 0 = each stage's own (see :func:`apply_epochs_all`).
    cfg.epochs_all = 0
    return cfg


def apply_epochs_all(cfg: ml_collections.ConfigDict, typed: Collection[str] = ()) -> list[str]:
    """Set every ``<section>.train.epochs`` of ``cfg`` (at any depth) to ``cfg.epochs_all`` when it is > 0.

    ``typed``: the config keys the user gave on the command line (``{"train.epochs"}`` for
    ``--config.train.epochs=3``; :func:`snnjax.launch.typed_config_keys`). A typed epoch key, or a
    typed section above it (``--config.teacher.train=...``), keeps its value: what the user wrote
    wins over ``epochs_all``, which only shortens the stages left unnamed.

    Returns the keys set (``["teacher.train.epochs", "train.epochs"]``). A quick trial of a
    multi-stage pipeline then shortens every stage at once, not only the last one.
    """
    n = int(cfg.get("epochs_all", 0) or 0)
    if n < 0:
        fail("epochs_all", n, "must be >= 0 (0 = each stage's own train.epochs)")
    if n == 0:
        return []
    changed = []

    def visit(node: ml_collections.ConfigDict, prefix: str) -> None:
        for key in node.keys():
            child = node[key]
            if not isinstance(child, ml_collections.ConfigDict):
                continue
            path = f"{prefix}train.epochs"
            if key == "train" and "epochs" in child and not _typed(path, typed):
                child.epochs = n
                changed.append(path)
            visit(child, f"{prefix}{key}.")

    visit(cfg, "")
    return sorted(changed)


def _typed(path: str, typed: Collection[str]) -> bool:
    """Whether ``path`` (``"teacher.train.epochs"``) or a section above it is among the ``typed`` keys."""
    parts = path.split(".")
    return any(".".join(parts[:i]) in typed for i in range(1, len(parts) + 1))


def parse_presets(arg: str | None, allowed: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Split ``"digits,kd_only"`` into one choice per group of ``allowed`` (group -> tokens).

    The first token of each group is its default. Unknown tokens fail with the allowed ones listed.
    """
    chosen = {group: tokens[0] for group, tokens in allowed.items()}
    for token in filter(None, (arg or "").split(",")):
        groups = [g for g, tokens in allowed.items() if token in tokens]
        if not groups:
            valid = sorted(t for tokens in allowed.values() for t in tokens)
            raise ValueError(f"unknown preset {token!r}; valid presets: {valid} (combine with commas)")
        chosen[groups[0]] = token
    return chosen


def fail(key: str, value, allowed: str) -> None:
    """Raise the config error every check uses: ``config.<key>=<value> is not valid: <allowed>``."""
    raise ValueError(f"config.{key}={value!r} is not valid: {allowed}")


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Check every value a run depends on before anything is loaded or compiled.

    The shared sections (``pipeline``, ``data``, ``model`` by its family in the model registry,
    ``optim``, ``train``, ``kd``) here, then the method's own ``validate`` (its sections, what it
    needs of the shared ones; :func:`snnjax.methods.validate`). Raises ``ValueError`` naming the
    key, the bad value and what is allowed.
    """
    from snnjax import methods  # local: keeps `import snnjax.config` light

    if cfg.pipeline not in methods.PIPELINES:
        fail("pipeline", cfg.pipeline, f"choose one of {list(methods.PIPELINES)}")
    validate_data(cfg.data, "data")
    models.validate(cfg.model, "model")
    validate_optim(cfg.optim, "optim")
    validate_train(cfg.train, "train")
    validate_loss(cfg)
    validate_through_time(cfg)
    if cfg.kd.enabled:
        if float(cfg.kd.temperature) <= 0:
            fail("kd.temperature", cfg.kd.temperature, "must be > 0")
        if float(cfg.kd.alpha) < 0:
            fail("kd.alpha", cfg.kd.alpha, "must be >= 0")
    methods.validate(cfg)


def validate_data(d: ml_collections.ConfigDict, prefix: str) -> None:
    from snnjax import data

    if not (d.name in data.dataset_names() or d.name.startswith(("tfds:", "records:"))):
        fail(f"{prefix}.name", d.name, f"choose one of {data.dataset_names()}, tfds:<name> or records:<dir>")
    if int(d.get("image_size", 0)) < 0 or int(d.get("workers", 1)) < 1:
        fail(
            f"{prefix}.image_size/workers",
            (d.get("image_size"), d.get("workers")),
            "need image_size >= 0, workers >= 1",
        )
    for key in ("batch_size", "eval_batch_size"):
        if int(d[key]) < 1:
            fail(f"{prefix}.{key}", d[key], "must be >= 1")
    if int(d.crop_padding) < 0:
        fail(f"{prefix}.crop_padding", d.crop_padding, "must be >= 0")
    from snnjax.data.stats import NORMALIZATIONS

    if d.get("normalization", "dataset") not in NORMALIZATIONS:
        fail(
            f"{prefix}.normalization",
            d.normalization,
            f"choose one of {list(NORMALIZATIONS)} (symmetric maps pixels to [-1, 1], unit to [0, 1])",
        )
    mean, std = tuple(d.get("mean", ()) or ()), tuple(d.get("std", ()) or ())
    if len(mean) != len(std) or any(float(s) <= 0 for s in std):
        fail(f"{prefix}.mean/std", (mean, std), "give one mean and one std > 0 per channel, or () for both")
    if int(d.get("train_subset", 0)) < 0:
        fail(f"{prefix}.train_subset", d.train_subset, "must be >= 0 (0 = the whole training split)")


def validate_optim(o: ml_collections.ConfigDict, prefix: str) -> None:
    if o.name not in optim.OPTIMIZERS:
        fail(f"{prefix}.name", o.name, f"choose one of {list(optim.OPTIMIZERS)}")
    if o.schedule not in optim.SCHEDULES:
        fail(f"{prefix}.schedule", o.schedule, f"choose one of {list(optim.SCHEDULES)}")
    if float(o.lr) <= 0:
        fail(f"{prefix}.lr", o.lr, "must be > 0")
    if float(o.weight_decay) < 0:
        fail(f"{prefix}.weight_decay", o.weight_decay, "must be >= 0")
    if not 0 < float(o.gamma) <= 1:
        fail(f"{prefix}.gamma", o.gamma, "must be in (0, 1]")


def validate_train(t: ml_collections.ConfigDict, prefix: str) -> None:
    if int(t.epochs) < 1:
        fail(f"{prefix}.epochs", t.epochs, "must be >= 1")
    if int(t.log_every_steps) < 1:
        fail(f"{prefix}.log_every_steps", t.log_every_steps, "must be >= 1")
    if int(t.eval_every_epochs) < 1:
        fail(f"{prefix}.eval_every_epochs", t.eval_every_epochs, "must be >= 1")
    if t.nonfinite not in NONFINITE:
        fail(f"{prefix}.nonfinite", t.nonfinite, f"choose one of {list(NONFINITE)}")
    if int(t.keep_checkpoints) < 1:
        fail(f"{prefix}.keep_checkpoints", t.keep_checkpoints, "must be >= 1")
    if t.get("loss", "ce") not in losses.TRAIN_LOSSES:
        fail(f"{prefix}.loss", t.loss, f"choose one of {list(losses.TRAIN_LOSSES)}")
    if not 0.0 <= float(t.get("tet_lambda", 0.0)) <= 1.0:
        fail(f"{prefix}.tet_lambda", t.tet_lambda, "must be in [0, 1] (TET's lambda; official code 1e-3)")
    if not math.isfinite(float(t.get("tet_target", 0.0))):
        fail(f"{prefix}.tet_target", t.tet_target, "must be a finite number (TET's phi; official code 1.0)")
    if t.get("through_time", "bptt") not in THROUGH_TIME:
        fail(f"{prefix}.through_time", t.through_time, f"choose one of {list(THROUGH_TIME)}")
    if int(t.get("sltt_k", 0)) < 0:
        fail(f"{prefix}.sltt_k", t.sltt_k, "must be >= 0 (0 = every time step)")
    target = t.get("stop_at_accuracy", 0.0)
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 <= float(target) <= 1.0:
        fail(
            f"{prefix}.stop_at_accuracy",
            target,
            "must be a test accuracy in [0, 1] (0 = train every epoch); e.g. 0.9 stops the stage at 90 %",
        )
    if int(t.get("stop_on_plateau_epochs", 0)) < 0:
        fail(f"{prefix}.stop_on_plateau_epochs", t.stop_on_plateau_epochs, "must be >= 0 (0 = off; e.g. 2)")
    if not isinstance(t.get("sltt_unroll", False), bool):
        fail(f"{prefix}.sltt_unroll", t.sltt_unroll, "must be True or False")


def validate_loss(cfg: ml_collections.ConfigDict) -> None:
    """``train.loss="tet"`` where it is defined: the run's main stage (``config.train`` with ``config.model``),
    on a spiking model whose family gives per-time-step logits (``PER_STEP_LOGITS``: the ResNet family).

    The other stages of a pipeline (``teacher.train``, ``ann.train``, ``pretrain.train``) train ANNs
    (T = 1, no time steps to train), and an ANN's TET would be a re-weighted CE; they keep ``"ce"``.
    """
    for path in _nested_train_sections(cfg, ""):
        section = cfg
        for key in path.split(".")[:-1]:
            section = section[key]
        loss = section.get("loss", "ce")
        if loss != "ce":
            fail(
                path, loss, "only config.train.loss (the run's spiking model) may be 'tet'; this stage trains with 'ce'"
            )
    if cfg.train.get("loss", "ce") != "tet":
        return
    if not getattr(models.registry.family(cfg.model.name), "PER_STEP_LOGITS", False):
        fail(
            "train.loss",
            "tet",
            f"TET needs per-time-step logits, which config.model.name={cfg.model.name!r} does not give "
            "(use a resnet*/sew_resnet* model, or 'ce')",
        )
    if cfg.model.get("neuron") == "relu":
        fail(
            "train.loss",
            "tet",
            "TET trains a spiking model over its time steps; config.model.neuron='relu' is an ANN (use 'ce')",
        )


def _nested_train_sections(node: ml_collections.ConfigDict, prefix: str) -> list[str]:
    """``"<section>.train.loss"`` of every ``train`` section below the top level (the stages before the main one)."""
    found = []
    for key in node.keys():
        child = node[key]
        if not isinstance(child, ml_collections.ConfigDict):
            continue
        if key == "train" and prefix and "loss" in child:
            found.append(f"{prefix}train.loss")
        found += _nested_train_sections(child, f"{prefix}{key}.")
    return found


def validate_through_time(cfg: ml_collections.ConfigDict) -> None:
    """``train.through_time="sltt"`` needs a spiking ResNet (LIF/IF/PLIF) in a pipeline that trains it
    with the default step (``train``, ``idsnn``), and ``train.sltt_k <= model.time_steps``."""
    if cfg.train.get("through_time", "bptt") != "sltt":
        return
    if cfg.pipeline not in SLTT_PIPELINES:
        fail(
            "train.through_time",
            "sltt",
            f"pipeline={cfg.pipeline!r} trains with its own step; SLTT runs in {list(SLTT_PIPELINES)}",
        )
    if cfg.model.get("neuron") not in SLTT_NEURONS or cfg.model.get("name") not in models.MODEL_NAMES:
        fail(
            "train.through_time",
            "sltt",
            f"cuts the membrane recursion of a spiking ResNet's neurons: needs model.name resnet*/sew_resnet* "
            f"and model.neuron in {list(SLTT_NEURONS)} (PSN has no recursion to cut), "
            f"got model.name={cfg.model.get('name')!r}, model.neuron={cfg.model.get('neuron')!r}",
        )
    if cfg.train.get("loss", "ce") != "ce":
        fail(
            "train.through_time",
            "sltt",
            f"SLTT trains on each time step's own CE already; combine it with train.loss='ce', not {cfg.train.loss!r}",
        )
    if int(cfg.train.sltt_k) > int(cfg.model.time_steps):
        fail("train.sltt_k", cfg.train.sltt_k, f"must be <= model.time_steps={cfg.model.time_steps} (0 = every step)")
