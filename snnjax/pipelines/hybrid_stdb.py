"""Hybrid conversion + STDB (Rathi et al., ICLR 2020): ANN -> converted SNN -> spike-based fine-tuning.

Stages, each checkpointed so that a re-run skips what is finished:

1. ``ann``: train the VGG ANN (ReLU, dropout, no BN; SGD) or restore it from ``config.ann.checkpoint``;
2. ``conversion``: copy its weights into the spiking VGG and balance one threshold per layer
   (:mod:`snnjax.conversion`), then test the converted SNN at every ``conversion.eval_time_steps``;
   thresholds and accuracies are saved in ``WORKDIR/conversion.json`` (reused on re-runs);
3. ``stdb``: fine-tune the converted SNN with the STDB (or linear) surrogate at the small
   ``model.time_steps`` (Adam with amsgrad), starting from the ANN weights and the scaled thresholds.

``summary.json``: ``best_test_accuracy`` is the fine-tuned SNN's best (at ``model.time_steps``);
``ann``, ``conversion`` (thresholds, accuracy per T) and ``finetuned_accuracy`` (per T, when
``conversion.eval_finetuned``) hold the rest of the accuracy-vs-T table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any

import jax
import ml_collections
import numpy as np

from snnjax import conversion
from snnjax import data as data_lib
from snnjax.data import pipeline as data_pipeline
from snnjax.models import vgg
from snnjax.pipelines.common import finish_run, write_json
from snnjax.train import loop
from snnjax.train.metric_writer import MetricWriter

CONVERSION_FILE = "conversion.json"
# Per-channel (mean, std) on the [0, 1] pixel scale; None = the dataset's own statistics.
NORMALIZATIONS: dict[str, float | None] = {"symmetric": 0.5, "unit": 0.0, "dataset": None}
BALANCE_KEYS = ("time_steps", "batch_size", "num_batches", "percentile", "time_chunk", "augment")
EVAL_KEYS = ("scaling_factor", "eval_time_steps", "eval_batch_size", "report_unscaled", "eval_examples")


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def normalization_name(config: ml_collections.ConfigDict, stage: str = "snn") -> str:
    """The normalisation of ``stage`` (``ann`` or ``snn``): ``config.ann.normalization`` for the ANN
    when set (the official CIFAR code trains its ANN on dataset mean/std but runs the SNN on 0.5/0.5),
    else ``config.data.normalization``."""
    name = config.data.get("normalization", "dataset")
    if stage == "ann" and config.get("ann") is not None and config.ann.get("normalization", ""):
        name = config.ann.normalization
    if name not in NORMALIZATIONS:
        raise ValueError(f"normalization {name!r} (config.data.normalization / config.ann.normalization) is not "
                         f"valid; choose one of {list(NORMALIZATIONS)} (symmetric maps pixels to [-1, 1], unit to "
                         "[0, 1], dataset uses the training split's mean/std)")
    return name


def with_normalization(splits: data_lib.DatasetSplits, name: str) -> data_lib.DatasetSplits:
    """``splits`` with the mean/std of normalisation ``name`` (``dataset`` keeps its own)."""
    if NORMALIZATIONS[name] is None:
        return splits
    channels = splits.image_shape[-1]
    mean = NORMALIZATIONS[name]
    std = 0.5 if name == "symmetric" else 1.0
    return dataclasses.replace(splits, mean=(mean,) * channels, std=(std,) * channels)


def prepare_splits(config: ml_collections.ConfigDict, stage: str = "snn") -> data_lib.DatasetSplits:
    """``config.data`` with the normalisation of ``stage`` (see :func:`normalization_name`)."""
    return with_normalization(loop.load_data(config.data), normalization_name(config, stage))


def normalized(images: np.ndarray, splits: data_lib.DatasetSplits) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` -> float32, ``(x / 255 - mean) / std`` as the train steps do it."""
    mean = np.asarray(splits.mean, np.float32)
    std = np.asarray(splits.std, np.float32)
    return ((images.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def _optim_section(optim: ml_collections.ConfigDict, epochs: int) -> ml_collections.ConfigDict:
    """``optim`` with multistep milestones at ``milestone_fractions`` of ``epochs`` (as the reference)."""
    out = ml_collections.ConfigDict(optim.to_dict())
    fractions = tuple(out.get("milestone_fractions", ()))
    if fractions:
        if not all(0.0 < float(f) < 1.0 for f in fractions):
            raise ValueError(f"milestone_fractions must lie in (0, 1), got {fractions}")
        out.milestones = tuple(int(float(f) * epochs) for f in fractions)
    return out


def stage_config(config: ml_collections.ConfigDict, model: ml_collections.ConfigDict,
                 optim: ml_collections.ConfigDict, train: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The single-stage config :func:`loop.train_and_evaluate` reads (it names the model ``name``)."""
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.model = ml_collections.ConfigDict(model.to_dict())
    cfg.model.name = model.arch
    cfg.optim = _optim_section(optim, int(train.epochs))
    cfg.train = ml_collections.ConfigDict(train.to_dict())
    cfg.kd.enabled = False
    return cfg


def ann_model_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The ANN twin of ``config.model``: same VGG, ReLU, T = 1, analog input, conv dropout
    ``config.ann.dropout`` (official: 0.2 for the ANN, 0.3 for the SNN; < 0 = the SNN's rate)."""
    cfg = ml_collections.ConfigDict(config.model.to_dict())
    cfg.neuron, cfg.time_steps, cfg.encoding = "relu", 1, "direct"
    if float(config.ann.get("dropout", -1.0)) >= 0.0:
        cfg.dropout = float(config.ann.dropout)
    return cfg


def obtain_ann(config: ml_collections.ConfigDict, workdir: str,
               splits: data_lib.DatasetSplits) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage 1: ``(ann_variables, ann_summary)``, trained here, resumed, or restored."""
    model_cfg = ann_model_config(config)
    acfg = stage_config(config, model_cfg, config.ann.optim, config.ann.train)
    model = vgg.build_vgg(model_cfg, splits.num_classes)
    if config.ann.checkpoint:
        restored = loop.restore_stage(acfg, loop.find_checkpoint_dir(
            config.ann.checkpoint, ("ann",), key="config.ann.checkpoint", what="ANN",
            fix="pass the --workdir of a hybrid_stdb run whose ANN stage finished (same model.arch/width), or "
                "leave it empty to train the ANN here."), model=model, splits=splits)
        state, meta = restored
        _log(f"[ann] restored from {config.ann.checkpoint} (step {int(state.step)})")
        return state.variables, {"restored_from": config.ann.checkpoint, **meta}
    summary_path = os.path.join(workdir, "ann_summary.json")
    restored = loop.restore_stage(acfg, loop.stage_checkpoint_dir(workdir, "ann"), model=model, splits=splits)
    finished = restored is not None and int(restored[0].step) >= loop.total_steps(acfg, splits)
    if finished and os.path.exists(summary_path):
        _log("[ann] finished earlier; restored")
        with open(summary_path) as f:
            return restored[0].variables, json.load(f)
    result = loop.train_and_evaluate(acfg, workdir, stage="ann", model=model, splits=splits)
    write_json(summary_path, result.summary)
    return result.state.variables, result.summary


def snn_model(config: ml_collections.ConfigDict, num_classes: int) -> vgg.VGG:
    """The spiking VGG of ``config.model``."""
    if config.model.neuron == "relu":
        raise ValueError("config.model is the SNN of the hybrid pipeline: set config.model.neuron to 'if' or "
                         "'lif' (the ANN of stage 1 is derived from it)")
    return vgg.build_vgg(config.model, num_classes)


def balancing_batches(config: ml_collections.ConfigDict, splits: data_lib.DatasetSplits) -> list[np.ndarray]:
    """``num_batches`` normalised training batches of ``batch_size`` for threshold balancing.

    ``conversion.augment`` True (the official code: the first batches of its shuffled, augmented
    training loader): a seeded random draw with the training augmentation (random crop with
    ``data.crop_padding``, flips when ``data.flip``); False: a seeded random subset as stored.
    """
    size, count = int(config.conversion.batch_size), int(config.conversion.num_batches)
    if size < 1 or count < 1:
        raise ValueError(f"config.conversion.batch_size={size} and num_batches={count} must be >= 1")
    order = np.random.default_rng(int(config.seed)).permutation(splits.train.num_examples)
    chosen = order[: size * count]
    raw = splits.train.images[chosen]
    if config.conversion.get("augment", False):
        key = jax.random.fold_in(jax.random.key(int(config.seed)), 5)
        raw = np.asarray(data_pipeline.random_crop_flip(key, jax.numpy.asarray(raw),
                                                        padding=int(config.data.crop_padding),
                                                        flip=bool(config.data.flip)))
    images = normalized(raw, splits)
    return [images[i: i + size] for i in range(0, len(chosen), size)]


def _settings(config: ml_collections.ConfigDict, keys: tuple[str, ...]) -> dict[str, Any]:
    out = {key: config.conversion.get(key, False) for key in keys}
    return json.loads(json.dumps(out))  # tuples -> lists, as they come back from the JSON file


def _check_same(saved: dict[str, Any], wanted: dict[str, Any], path: str) -> None:
    diff = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
    if diff:
        raise ValueError(f"{path} was made with other settings (saved, now): {diff}. Fix: delete {path} and "
                         f"{os.path.dirname(path)}/checkpoints/stdb to convert again, or use a new --workdir")


def convert(config: ml_collections.ConfigDict, workdir: str, splits: data_lib.DatasetSplits,
            ann_variables: dict[str, Any], model: vgg.VGG) -> dict[str, Any]:
    """Stage 2: balanced thresholds and the converted SNN's accuracy per T (cached in conversion.json)."""
    path = os.path.join(workdir, CONVERSION_FILE)
    balance = {**_settings(config, BALANCE_KEYS), "arch": config.model.arch, "width": int(config.model.width),
               "encoding": config.model.encoding, "normalization": config.data.get("normalization", "dataset"),
               "ann_normalization": normalization_name(config, "ann"),
               "spike_delay": bool(config.model.get("spike_delay", False)),
               "ann_checkpoint": config.ann.checkpoint, "seed": int(config.seed)}
    evaluation = {**_settings(config, EVAL_KEYS), "neuron": config.model.neuron, "decay": float(config.model.decay)}
    record: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
        _check_same(record["balance_settings"], balance, path)
        _log(f"[conversion] thresholds from {path}")
    else:
        settings = conversion.BalanceSettings(
            time_steps=int(config.conversion.time_steps), percentile=float(config.conversion.percentile),
            scaling_factor=float(config.conversion.scaling_factor), time_chunk=int(config.conversion.time_chunk))
        key = jax.random.fold_in(jax.random.key(int(config.seed)), 3)
        raw = conversion.balance_thresholds(model, jax.device_get(ann_variables), balancing_batches(config, splits),
                                            key, settings, log=lambda m: _log(f"[conversion] {m}"))
        record = {"balance_settings": balance, "thresholds": raw}
        write_json(path, record)
    if record.get("evaluation_settings") != evaluation:
        record.update(evaluation_settings=evaluation, **evaluate_converted(config, workdir, splits, ann_variables,
                                                                           model, record["thresholds"]))
        write_json(path, record)
    return record


def _sweep(config: ml_collections.ConfigDict, splits: data_lib.DatasetSplits, model: vgg.VGG,
           variables: dict[str, Any]) -> dict[str, float]:
    """Test accuracy at every ``conversion.eval_time_steps`` (JSON keys: T as strings), on the first
    ``conversion.eval_examples`` test images (0 = all)."""
    key = jax.random.fold_in(jax.random.key(int(config.seed)), 4)
    n = int(config.conversion.get("eval_examples", 0)) or splits.test.num_examples
    acc = conversion.accuracy_over_time(
        model, variables, normalized(splits.test.images[:n], splits), splits.test.labels[:n], key,
        time_steps=tuple(config.conversion.eval_time_steps), batch_size=int(config.conversion.eval_batch_size),
        time_chunk=int(config.conversion.time_chunk))
    return {str(t): a for t, a in acc.items()}


def evaluate_converted(config: ml_collections.ConfigDict, workdir: str, splits: data_lib.DatasetSplits,
                       ann_variables: dict[str, Any], model: vgg.VGG, thresholds: dict[str, float]) -> dict[str, Any]:
    """Accuracy of the converted SNN per T, with scaled (and, optionally, unscaled) thresholds."""
    factor = float(config.conversion.scaling_factor)
    scaled = conversion.scale_thresholds(thresholds, factor)
    ann_params = jax.device_get(ann_variables)
    out: dict[str, Any] = {"scaled_thresholds": scaled,
                           "accuracy": _sweep(config, splits, model, conversion.snn_variables(ann_params, scaled))}
    if config.conversion.report_unscaled:
        out["accuracy_unscaled"] = _sweep(config, splits, model, conversion.snn_variables(ann_params, thresholds))
    writer = MetricWriter(workdir, "conversion", tensorboard=bool(config.train.tensorboard))
    try:
        for t, acc in out["accuracy"].items():
            extra = {"test_accuracy_unscaled": out["accuracy_unscaled"][t]} if "accuracy_unscaled" in out else {}
            writer.write("conversion", int(t), time_steps=int(t), test_accuracy=acc, scaling_factor=factor, **extra)
    finally:
        writer.close()
    _log(f"[conversion] converted SNN accuracy per T (thresholds x{factor}): {out['accuracy']}")
    if "accuracy_unscaled" in out:
        _log(f"[conversion] with unscaled thresholds: {out['accuracy_unscaled']}")
    return out


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    raw = loop.load_data(config.data)
    splits = with_normalization(raw, normalization_name(config, "snn"))
    model = snn_model(config, splits.num_classes)
    ann_variables, ann_summary = obtain_ann(config, workdir, with_normalization(raw, normalization_name(config, "ann")))
    record = convert(config, workdir, splits, ann_variables, model)

    initial = conversion.snn_variables(jax.device_get(ann_variables), record["scaled_thresholds"])
    scfg = stage_config(config, config.model, config.optim, config.train)
    result = loop.train_and_evaluate(scfg, workdir, stage="stdb", model=model, splits=splits,
                                     initial_variables=initial)
    summary = dict(result.summary)
    summary.update(
        pipeline="hybrid_stdb",
        spike_grad=config.model.spike_grad,
        ann={k: ann_summary.get(k) for k in ("best_test_accuracy", "final_test_accuracy", "epochs", "restored_from")
             if k in ann_summary},
        conversion={k: record[k] for k in ("thresholds", "scaled_thresholds", "accuracy", "accuracy_unscaled")
                    if k in record},
    )
    if config.conversion.get("eval_finetuned", False):
        summary["finetuned_accuracy"] = _sweep(config, splits, model, jax.device_get(result.state.variables))
        _log(f"[stdb] fine-tuned SNN accuracy per T: {summary['finetuned_accuracy']}")
    return finish_run(workdir, summary)
