"""Pretraining as a bridge from ANNs to SNNs (Lin et al., TNNLS 2024): pipe-S and pipe-D.

Stages, each checkpointed so that a re-run skips what is finished:

1. pretrain: train the ANN twin of ``config.model`` (the shared ResNet with ReLU, or the
   "sharpened ReLU" :class:`~snnjax.layers.SharpenedReLU`, T = 1, BN gamma initialised to
   ``config.pretrain.bn_scale_init`` = V_th 0.5 like tdBN) on ``config.pretrain.data`` (an empty
   name means ``config.data``), or restore it from ``config.pretrain.checkpoint``;
2. transfer: ANN and SNN share one parameter layout, so loading is a tree copy
   (:func:`load_pretrained`): every conv kernel, BN gamma/beta, BN running mean/var and the FC
   layer, except the modules named in ``config.pretrain.reinit`` (pipe-D: ``stem_conv``, whose
   input channels differ: 1 or 3 static channels vs 2 event polarities). The record of what was
   copied goes to ``workdir/transfer_report.txt``;
3. finetune: train the LIF SNN (direct input for static data, event frames for pipe-D) with
   surrogate gradients, ``config.optim`` (SGD, lr x0.3 at epochs 2/4/6/8) and ``config.train``.

``config.pretrain.enabled = False`` runs stage 3 alone from a fresh initialisation: the "from
scratch" arm the paper compares against.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import traverse_util

from snnjax import config as config_lib
from snnjax import layers, models
from snnjax.data import pipeline as data_pipeline
from snnjax.pipelines.common import finish_run, write_json
from snnjax.train import loop, steps
from snnjax.train.state import TrainState

TRANSFER_COLLECTIONS = ("params", "batch_stats")
ACTIVATIONS = ("sharpened", "relu")
PRETRAIN_STAGE, FINETUNE_STAGE = "pretrain", "finetune"
REPORT_FILE = "transfer_report.txt"


# ---------------------------------------------------------------------------------------------
# Transfer: ANN variables -> SNN variables (a tree copy).
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TransferReport:
    """Which target leaves came from the source (paths ``collection/module/.../name``).

    Attributes:
      copied: target leaves set to the source's value.
      reinitialised: target leaves left as initialised because ``reinit`` names their module.
      kept: target leaves the source lacks (e.g. PLIF's ``decay_logit``), left as initialised.
      unused: source leaves with no target (e.g. the sharpened ReLU's epoch counter).
    """

    copied: tuple[str, ...]
    reinitialised: tuple[str, ...]
    kept: tuple[str, ...]
    unused: tuple[str, ...]

    def counts(self) -> dict[str, Any]:
        return {"copied": len(self.copied), "reinitialised": list(self.reinitialised), "kept": list(self.kept),
                "unused": list(self.unused)}

    def to_text(self) -> str:
        lines = [f"copied ({len(self.copied)}):"] + [f"  {p}" for p in self.copied]
        for title, paths in (("re-initialised", self.reinitialised), ("kept (not in the source)", self.kept),
                             ("unused source leaves", self.unused)):
            lines += [f"{title} ({len(paths)}):"] + [f"  {p}" for p in paths]
        return "\n".join(lines)


def _flat(variables: dict[str, Any]) -> dict[str, Any]:
    return {"/".join(path): leaf for path, leaf in traverse_util.flatten_dict(dict(variables)).items()}


def _module_of(path: str) -> str:
    """``params/stage0_block0/conv1/kernel -> stage0_block0/conv1``."""
    return "/".join(path.split("/")[1:-1])


def _matches(path: str, prefixes: tuple[str, ...]) -> bool:
    module = _module_of(path)
    return any(module == p or module.startswith(p + "/") for p in prefixes)


def load_pretrained(source: dict[str, Any], target: dict[str, Any], *,
                    reinit: tuple[str, ...] = ()) -> tuple[dict[str, Any], TransferReport]:
    """Copy ``source`` (ANN) variables into ``target`` (SNN) variables of the same layout.

    Args:
      source: ``{"params": ..., "batch_stats": ..., ...}`` of the pretrained ANN.
      target: freshly initialised variables of the SNN (same parameter names).
      reinit: module paths (e.g. ``"stem_conv"``, ``"stage0_block0/conv1"``) whose leaves keep the
        target's initial values.

    Returns:
      ``(variables, report)``: ``target``'s tree with every ``params`` / ``batch_stats`` leaf
      replaced by the source's leaf of the same path (cast to the target's dtype), except the
      ``reinit`` modules and leaves the source lacks; the other collections of ``target`` as given.

    Raises:
      ValueError: a ``reinit`` entry matches no module, or a copied leaf's shape differs (the
        message names the path, both shapes and the fix).
    """
    src = {k: v for k, v in _flat({c: source[c] for c in TRANSFER_COLLECTIONS if c in source}).items()}
    src_all = _flat(source)
    dst = _flat({c: target[c] for c in TRANSFER_COLLECTIONS if c in target})
    modules = sorted({_module_of(p) for p in dst})
    for prefix in reinit:
        if not any(m == prefix or m.startswith(prefix + "/") for m in modules):
            raise ValueError(f"config.pretrain.reinit names {prefix!r}, which matches no module of the SNN; "
                             f"valid module paths include {[m for m in modules if '/' not in m]}")
    out, copied, reinitialised, kept = {}, [], [], []
    for path, leaf in dst.items():
        if _matches(path, reinit):
            out[path] = leaf
            reinitialised.append(path)
        elif path not in src:
            out[path] = leaf
            kept.append(path)
        else:
            value = src[path]
            if tuple(value.shape) != tuple(leaf.shape):
                raise ValueError(
                    f"cannot load pretrained {path}: the ANN has shape {tuple(value.shape)}, the SNN "
                    f"{tuple(leaf.shape)}. Fix: if the input channels or classes differ (e.g. event data with 2 "
                    f"polarity channels), add {_module_of(path)!r} to config.pretrain.reinit (comma-separated).")
            out[path] = jnp.asarray(value, dtype=leaf.dtype)
            copied.append(path)
    unused = sorted(p for p in src_all if p not in dst)
    merged = {k: v for k, v in target.items() if k not in TRANSFER_COLLECTIONS}
    merged.update(traverse_util.unflatten_dict({tuple(p.split("/")): v for p, v in out.items()}))
    report = TransferReport(tuple(copied), tuple(reinitialised), tuple(kept), tuple(unused))
    return merged, report


# ---------------------------------------------------------------------------------------------
# The ANN twin and its epoch-fed step.
# ---------------------------------------------------------------------------------------------


def ann_model_config(snn_model: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``snn_model`` with ``neuron='relu'`` and ``time_steps=1``: same topology, same names."""
    cfg = ml_collections.ConfigDict(snn_model.to_dict())
    cfg.neuron = "relu"
    cfg.time_steps = 1
    return cfg


def sharpen_horizon(pretrain: ml_collections.ConfigDict) -> float:
    """The "200" of ``a = min(e / 200, 0.49)``: the config value, or 2 x pretrain epochs when 0."""
    horizon = float(pretrain.sharpen_horizon_epochs)
    return horizon if horizon > 0 else 2.0 * int(pretrain.train.epochs)


def build_ann(snn_model: ml_collections.ConfigDict, num_classes: int, pretrain: ml_collections.ConfigDict) -> nn.Module:
    """The ANN twin: the SNN's ResNet with ReLU or SharpenedReLU, T = 1, BN gamma = ``pretrain.bn_scale_init``.

    ``build_model`` gives ANNs gamma 1.0; the pretraining paper's ANN uses tdBN's V_th init (0.5),
    so the module is cloned with that value.
    """
    ann = models.build_model(ann_model_config(snn_model), num_classes)
    activation: Any = layers.ReLU
    if pretrain.activation == "sharpened":
        activation = functools.partial(layers.SharpenedReLU, horizon_epochs=sharpen_horizon(pretrain))
    return ann.clone(activation=activation, bn_scale_init=float(pretrain.bn_scale_init))


def feed_epoch(model_state: dict[str, Any], epoch: jax.Array) -> dict[str, Any]:
    """``model_state`` with every leaf of the SharpenedReLU schedule collection set to ``epoch``."""
    collection = layers.SharpenedReLU.collection
    if collection not in model_state:
        return model_state
    fed = jax.tree.map(lambda leaf: jnp.asarray(epoch, leaf.dtype), model_state[collection])
    return {**model_state, collection: fed}


def epoch_fed_step(steps_per_epoch: int) -> Callable:
    """A ``make_step`` factory whose step feeds the (1-based, as the official code) epoch to the model.

    The epoch is ``state.step // steps_per_epoch + 1``, a pure function of the state, so resumed
    runs see the same schedule.
    """

    def make_step(model, tx, *, distillation=None, nonfinite="stop"):
        inner = steps.make_train_step(model, tx, distillation=distillation, nonfinite=nonfinite)

        def train_step(state: TrainState, batch, teacher_variables=None):
            epoch = (state.step // steps_per_epoch + 1).astype(jnp.float32)
            return inner(state.replace(model_state=feed_epoch(state.model_state, epoch)), batch, teacher_variables)

        return train_step

    return make_step


# ---------------------------------------------------------------------------------------------
# Stages.
# ---------------------------------------------------------------------------------------------


def pretrain_run_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The single-stage config of stage 1: ANN model, pretrain data/optim/train."""
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.model = ann_model_config(config.model)
    if config.pretrain.data.name:
        cfg.data = ml_collections.ConfigDict(config.pretrain.data.to_dict())
    cfg.optim = ml_collections.ConfigDict(config.pretrain.optim.to_dict())
    cfg.train = ml_collections.ConfigDict(config.pretrain.train.to_dict())
    cfg.kd.enabled = False
    del cfg["pretrain"]
    return cfg


def parse_reinit(value: str) -> tuple[str, ...]:
    return tuple(p.strip().strip("/") for p in str(value).split(",") if p.strip())


def check_config(config: ml_collections.ConfigDict) -> None:
    """Validate the ``pretrain`` section (``config_lib.validate`` checks the rest)."""
    p = config.pretrain
    if p.activation not in ACTIVATIONS:
        raise ValueError(f"config.pretrain.activation={p.activation!r} is not valid; choose one of {list(ACTIVATIONS)}")
    if float(p.bn_scale_init) <= 0:
        raise ValueError(f"config.pretrain.bn_scale_init={p.bn_scale_init!r} must be > 0 (V_th = 0.5 in the paper)")
    if float(p.sharpen_horizon_epochs) < 0:
        raise ValueError(f"config.pretrain.sharpen_horizon_epochs={p.sharpen_horizon_epochs!r} must be >= 0 "
                         "(0 = twice the pretraining epochs)")
    if config.model.neuron == "relu":
        raise ValueError("config.model.neuron='relu': the fine-tuned model is the SNN; use 'lif' (the paper) "
                         "or 'if' / 'plif'. The ANN twin is derived from it automatically.")
    config_lib.validate_optim(p.optim, "pretrain.optim")
    config_lib.validate_train(p.train, "pretrain.train")
    if p.data.name:
        from snnjax import data

        if not (p.data.name in data.dataset_names() or p.data.name.startswith("tfds:")):
            raise ValueError(f"config.pretrain.data.name={p.data.name!r} is not valid: choose one of "
                             f"{data.dataset_names()}, or '' to pretrain on config.data")


def check_event_steps(config: ml_collections.ConfigDict, image_shape: tuple[int, ...], what: str) -> None:
    """Event frames ``[T, H, W, C]`` must have ``T = config.model.time_steps``."""
    if len(image_shape) == 4 and image_shape[0] != int(config.model.time_steps):
        raise ValueError(
            f"{what} has {image_shape[0]} frames per sample but config.model.time_steps="
            f"{config.model.time_steps}. Fix: set --config.data.options.time_steps={config.model.time_steps} "
            "(the event datasets' T) or change config.model.time_steps to match.")


def obtain_pretrained(config: ml_collections.ConfigDict, workdir: str) -> tuple[Any, dict[str, Any], Any]:
    """Stage 1: ``(ann_variables, pretrain_summary, ann_opt_state)``, trained here, resumed, or restored."""
    pcfg = pretrain_run_config(config)
    splits = loop.load_data(pcfg.data)
    if len(splits.image_shape) != 3:
        raise ValueError(f"pretraining data {splits.name!r} has samples of shape {splits.image_shape}; the ANN "
                         "(T = 1) needs static images [H, W, C]. Fix: set config.pretrain.data.name to a static "
                         "dataset (e.g. digits, cifar10).")
    ann = build_ann(config.model, splits.num_classes, config.pretrain)
    if config.pretrain.checkpoint:
        restored = loop.restore_stage(pcfg, loop.find_checkpoint_dir(
            config.pretrain.checkpoint, (PRETRAIN_STAGE,), key="config.pretrain.checkpoint", what="pretraining",
            fix="pass the --workdir of a finished `launch.py --config configs/pretrain.py` run, or leave it empty "
                "to pretrain here."), model=ann, splits=splits)
        if restored is None:
            raise FileNotFoundError(f"config.pretrain.checkpoint={config.pretrain.checkpoint!r}: no checkpoint found")
        state, meta = restored
        print(f"[pretrain] restored from {config.pretrain.checkpoint} (step {int(state.step)})", file=sys.stderr)
        return state.variables, {"restored_from": config.pretrain.checkpoint, **meta}, state.opt_state
    summary_path = os.path.join(workdir, f"{PRETRAIN_STAGE}_summary.json")
    restored = loop.restore_stage(pcfg, loop.stage_checkpoint_dir(workdir, PRETRAIN_STAGE), model=ann, splits=splits)
    finished = restored is not None and int(restored[0].step) >= loop.total_steps(pcfg, splits)
    if finished and os.path.exists(summary_path):
        print(f"[pretrain] finished earlier; restored from {workdir}", file=sys.stderr)
        with open(summary_path) as f:
            return restored[0].variables, json.load(f), restored[0].opt_state
    spe = data_pipeline.steps_per_epoch(splits.train.num_examples, int(pcfg.data.batch_size))
    make_step = epoch_fed_step(spe) if config.pretrain.activation == "sharpened" else steps.make_train_step
    result = loop.train_and_evaluate(pcfg, workdir, stage=PRETRAIN_STAGE, model=ann, splits=splits,
                                     make_step=make_step)
    summary = dict(result.summary, activation=config.pretrain.activation,
                   bn_scale_init=float(config.pretrain.bn_scale_init))
    write_json(summary_path, summary)
    return result.state.variables, summary, result.state.opt_state


def _traces(opt_state: Any) -> list[Any]:
    """The momentum buffers (``optax.TraceState``) of an optimizer state, in order."""
    is_trace = lambda x: isinstance(x, optax.TraceState)  # noqa: E731
    return [x for x in jax.tree.leaves(opt_state, is_leaf=is_trace) if is_trace(x)]


def load_momentum(target: Any, source: Any, copied: tuple[str, ...]) -> Any:
    """``target`` (a fresh fine-tuning optimizer state) with the SGD momentum buffers of ``source``
    (the pretraining optimizer's state) for every parameter in ``copied`` (``params/...`` paths of
    :class:`TransferReport`); other buffers stay zero, step counts stay fresh (the official
    fine-tuning resets the lr and its scheduler after loading the optimizer state).

    Raises ``ValueError`` when either optimizer has no momentum (SGD with momentum needed).
    """
    src, dst = _traces(source), _traces(target)
    if len(src) != 1 or len(dst) != 1:
        raise ValueError("config.pretrain.load_optimizer_state=True loads SGD momentum buffers: both "
                         "config.pretrain.optim and config.optim must be SGD with momentum > 0 "
                         f"(found {len(src)} and {len(dst)} momentum states)")
    src_flat = {"params/" + k: v for k, v in _flat(src[0].trace).items()}
    wanted = set(copied)

    def pick(path, leaf):
        key = "params/" + "/".join(str(getattr(p, "key", p)) for p in path)
        value = src_flat.get(key)
        if key in wanted and value is not None and tuple(value.shape) == tuple(leaf.shape):
            return jnp.asarray(value, leaf.dtype)
        return leaf

    new_trace = jax.tree_util.tree_map_with_path(pick, dst[0].trace)
    replaced = dst[0]._replace(trace=new_trace)
    is_trace = lambda x: isinstance(x, optax.TraceState)  # noqa: E731
    return jax.tree.map(lambda x: replaced if is_trace(x) else x, target, is_leaf=is_trace)


def trainable_mask(params: Any, copied: tuple[str, ...]) -> Any:
    """A params-shaped tree: False for every loaded (copied) parameter, True for the rest
    (the re-initialised modules and parameters the source lacks): the official pipe-D freezing."""
    frozen = set(copied)
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "params/" + "/".join(str(getattr(p, "key", p)) for p in path) not in frozen, params)


def evaluate_accuracy(model: nn.Module, variables: dict[str, Any], splits, batch_size: int) -> float:
    """Test accuracy of ``variables`` as they are (no training), on the default device."""
    eval_fn = jax.jit(steps.make_device_eval_step(steps.make_eval_step(model), batch_size=batch_size,
                                                  mean=tuple(splits.mean), std=tuple(splits.std)))
    images, labels = jnp.asarray(splits.test.images), jnp.asarray(splits.test.labels)
    sums = jax.device_get([eval_fn(variables, images, labels, jnp.int32(i))
                           for i in range(data_pipeline.num_eval_batches(splits.test.num_examples, batch_size))])
    return sum(float(s["correct"]) for s in sums) / sum(float(s["count"]) for s in sums)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    check_config(config)
    splits = loop.load_data(config.data)
    check_event_steps(config, splits.image_shape, f"config.data.name={config.data.name!r}")
    snn = models.build_model(config.model, splits.num_classes)

    initial, pre_summary, transfer = None, {}, {}
    trainable, opt_state_fn = None, None
    if config.pretrain.enabled:
        ann_vars, pre_summary, ann_opt_state = obtain_pretrained(config, workdir)
        fresh = loop.init_variables(snn, splits.image_shape, int(config.seed), loop.mesh_lib.make_mesh())
        initial, report = load_pretrained(jax.device_get(ann_vars), jax.device_get(fresh),
                                          reinit=parse_reinit(config.pretrain.reinit))
        with open(os.path.join(workdir, REPORT_FILE), "w") as f:
            f.write(report.to_text() + "\n")
        transfer = report.counts()
        if config.pretrain.eval_transfer:
            # What the ANN weights give the SNN before any fine-tuning (the paper's starting point).
            transfer["test_accuracy_before_finetune"] = evaluate_accuracy(
                snn, initial, splits, min(int(config.data.eval_batch_size), splits.test.num_examples))
        print(f"[transfer] {len(report.copied)} tensors loaded from the ANN, {len(report.reinitialised)} "
              f"re-initialised ({', '.join(parse_reinit(config.pretrain.reinit)) or 'none'}); "
              f"see {workdir}/{REPORT_FILE}", file=sys.stderr)
        copied = tuple(p for p in report.copied if p.startswith("params/"))
        if config.pretrain.get("freeze_loaded", False):
            trainable = trainable_mask(initial["params"], copied)
            n_train = sum(bool(t) for t in jax.tree.leaves(trainable))
            transfer["trainable_tensors"] = n_train
            print(f"[transfer] freeze_loaded: {len(copied)} loaded parameter tensors frozen, {n_train} trained",
                  file=sys.stderr)
        if config.pretrain.get("load_optimizer_state", False):
            opt_state_fn = functools.partial(load_momentum, source=jax.device_get(ann_opt_state), copied=copied)
            transfer["momentum_loaded"] = True

    result = loop.train_and_evaluate(config, workdir, stage=FINETUNE_STAGE, model=snn, splits=splits,
                                     initial_variables=initial, trainable=trainable, initial_opt_state=opt_state_fn)
    summary = dict(result.summary)
    summary.update(pipeline="pretrain", pretrained=bool(config.pretrain.enabled),
                   input="events" if len(splits.image_shape) == 4 else "static",
                   pretrain=pre_summary, transfer=transfer)
    return finish_run(workdir, summary)


__all__ = ["TransferReport", "ann_model_config", "build_ann", "epoch_fed_step", "evaluate_accuracy", "feed_epoch",
           "load_momentum", "load_pretrained", "run", "sharpen_horizon", "trainable_mask"]
