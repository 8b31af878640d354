"""Hybrid conversion + STDB (Rathi et al., ICLR 2020): ANN -> converted SNN -> spike-based fine-tuning.

Stages, each checkpointed so that a re-run skips what is finished:

1. ``ann``: train the VGG or ResNet ANN (ReLU, dropout, no BN; SGD) or restore it from ``config.ann.checkpoint``;
2. ``conversion``: copy its weights into the spiking twin and balance one threshold per layer
   (:mod:`snnjax.methods.hybrid.conversion`; ``conversion.balance`` says which layers), then test the converted SNN at every
   ``conversion.eval_time_steps``; thresholds and accuracies are saved in ``WORKDIR/conversion.json``
   (reused on re-runs);
3. ``stdb``: fine-tune the converted SNN with the STDB (or linear) surrogate at the small
   ``model.time_steps`` (Adam with amsgrad), starting from the ANN weights and the scaled thresholds.

``summary.json``: ``best_test_accuracy`` is the fine-tuned SNN's best (at ``model.time_steps``);
``ann``, ``conversion`` (thresholds, accuracy per T) and ``finetuned_accuracy`` (per T, when
``conversion.eval_finetuned``) hold the rest of the accuracy-vs-T table.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from snnjax import data as data_lib
from snnjax import models, workdir_layout
from snnjax.data import batches as data_batches
from snnjax.methods.hybrid import config as hybrid_config
from snnjax.methods.hybrid import conversion
from snnjax.train import distributed, loop, stages
from snnjax.train.metric_writer import MetricWriter, NullWriter
from snnjax.train.run_outputs import finish_run, write_json

LEGACY_BALANCE = {"balance": "all", "default_threshold": 1.0, "statistic": "spikes"}


def _log(message: str) -> None:
    distributed.say(message)  # process 0 only


def normalized(images: np.ndarray, splits: data_lib.DatasetSplits) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` -> float32, ``(x / 255 - mean) / std`` as the train steps do it."""
    return np.asarray(data_batches.normalize(images, splits.mean, splits.std))


def balancing_batches(config: ml_collections.ConfigDict, splits: data_lib.DatasetSplits) -> list[np.ndarray]:
    """``num_batches`` normalised training batches of ``batch_size`` for threshold balancing.

    ``conversion.augment`` True (the official code: the first batches of its shuffled, augmented
    training loader): a seeded random draw with the training augmentation (random crop with
    ``data.crop_padding``, flips when ``data.flip``); False: a seeded random subset as stored.
    """
    size, count = int(config.conversion.batch_size), int(config.conversion.num_batches)
    order = np.random.default_rng(int(config.seed)).permutation(splits.train.num_examples)
    chosen = order[: size * count]
    raw = splits.train.images[chosen]
    if config.conversion.get("augment", False):
        key = jax.random.fold_in(jax.random.key(int(config.seed)), 5)
        raw = np.asarray(
            data_batches.random_crop_flip(
                key, jax.numpy.asarray(raw), padding=int(config.data.crop_padding), flip=bool(config.data.flip)
            )
        )
    images = normalized(raw, splits)
    return [images[i : i + size] for i in range(0, len(chosen), size)]


def _settings(config: ml_collections.ConfigDict, keys: tuple[str, ...]) -> dict[str, Any]:
    out = {key: config.conversion.get(key, False) for key in keys}
    return json.loads(json.dumps(out))  # tuples -> lists, as they come back from the JSON file


def _check_same(saved: dict[str, Any], wanted: dict[str, Any], path: str) -> None:
    diff = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
    if diff:
        raise ValueError(
            f"{path} was made with other settings (saved, now): {diff}. Fix: delete {path} and "
            f"{workdir_layout.stage_checkpoints(os.path.dirname(path), 'stdb')} to convert again, or use a new --workdir"
        )


def convert(
    config: ml_collections.ConfigDict,
    workdir: str,
    splits: data_lib.DatasetSplits,
    ann_variables: dict[str, Any],
    model: conversion.HybridModel,
    mesh: Any,
) -> dict[str, Any]:
    """Stage 2: balanced thresholds and the converted SNN's accuracy per T (cached in conversion.json)."""
    path = workdir_layout.conversion(workdir)
    balance = {
        **_settings(config, hybrid_config.BALANCE_KEYS),
        "arch": config.model.name,
        "width": int(config.model.width),
        "encoding": config.model.encoding,
        "normalization": config.data.get("normalization", "dataset"),
        "ann_normalization": hybrid_config.ann_config(config).data.normalization,
        "spike_delay": bool(config.model.get("spike_delay", False)),
        **({"poisson_gain": float(config.model.poisson_gain)} if "poisson_gain" in config.model else {}),
        "ann_checkpoint": config.ann.checkpoint,
        "seed": int(config.seed),
    }
    evaluation = {
        **_settings(config, hybrid_config.EVAL_KEYS),
        "neuron": config.model.neuron,
        "decay": float(config.model.decay),
        "counts_spikes": True,  # files from before spikes were counted are evaluated again
    }
    record: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
        # Files written before conversion.balance existed balanced every layer.
        _check_same({**LEGACY_BALANCE, **record["balance_settings"]}, balance, path)
        _log(f"[conversion] thresholds from {path}")
    else:
        settings = conversion.BalanceSettings(
            time_steps=int(config.conversion.time_steps),
            percentile=float(config.conversion.percentile),
            scaling_factor=float(config.conversion.scaling_factor),
            time_chunk=int(config.conversion.time_chunk),
            mode=config.conversion.balance,
            statistic=config.conversion.statistic,
            default_threshold=float(config.conversion.default_threshold),
        )
        key = jax.random.fold_in(jax.random.key(int(config.seed)), 3)
        t0 = time.perf_counter()
        raw = conversion.balance_thresholds(
            model,
            jax.device_get(ann_variables),
            balancing_batches(config, splits),
            key,
            settings,
            log=lambda m: _log(f"[conversion] {m}"),
            mesh=mesh,
        )
        record = {"balance_settings": balance, "thresholds": raw, "balance_seconds": time.perf_counter() - t0}
        write_json(path, record)
    if record.get("evaluation_settings") != evaluation:
        record.update(
            evaluation_settings=evaluation,
            **evaluate_converted(config, workdir, splits, ann_variables, model, record["thresholds"], mesh),
        )
        write_json(path, record)
    return record


def _sweep(
    config: ml_collections.ConfigDict,
    splits: data_lib.DatasetSplits,
    model: conversion.HybridModel,
    variables: dict[str, Any],
    mesh: Any,
    time_steps: tuple[int, ...] | None = None,
) -> dict[str, dict[str, float]]:
    """Test accuracy and spikes per image at every ``time_steps`` (default ``conversion.eval_time_steps``),
    on the first ``conversion.eval_examples`` test images (0 = all): ``{"accuracy": {T: ...},
    "spikes": {T: ...}}`` with T as strings (JSON keys)."""
    key = jax.random.fold_in(jax.random.key(int(config.seed)), 4)
    n = int(config.conversion.get("eval_examples", 0)) or splits.test.num_examples
    points = conversion.sweep_over_time(
        model,
        variables,
        normalized(splits.test.images[:n], splits),
        splits.test.labels[:n],
        key,
        time_steps=time_steps or tuple(config.conversion.eval_time_steps),
        batch_size=int(config.conversion.eval_batch_size),
        time_chunk=int(config.conversion.time_chunk),
        mesh=mesh,
    )
    return {
        "accuracy": {str(t): p["accuracy"] for t, p in points.items()},
        "spikes": {str(t): p["spikes_per_image"] for t, p in points.items()},
    }


def evaluate_converted(
    config: ml_collections.ConfigDict,
    workdir: str,
    splits: data_lib.DatasetSplits,
    ann_variables: dict[str, Any],
    model: conversion.HybridModel,
    thresholds: dict[str, float],
    mesh: Any,
) -> dict[str, Any]:
    """Accuracy of the converted SNN per T, with scaled (and, optionally, unscaled) thresholds."""
    factor, mode = float(config.conversion.scaling_factor), config.conversion.balance
    scaled = conversion.scale_thresholds(thresholds, factor, mode=mode)
    ann_params = jax.device_get(ann_variables)
    t0 = time.perf_counter()
    sweep = _sweep(config, splits, model, conversion.snn_variables(ann_params, scaled, mode=mode), mesh)
    out: dict[str, Any] = {"scaled_thresholds": scaled, "accuracy": sweep["accuracy"], "spikes": sweep["spikes"]}
    out["sweep_seconds"] = time.perf_counter() - t0
    if config.conversion.report_unscaled:
        unscaled = conversion.snn_variables(ann_params, thresholds, mode=mode)
        out["accuracy_unscaled"] = _sweep(config, splits, model, unscaled, mesh)["accuracy"]
    writer = (  # logs from process 0 only, as the training loop's
        MetricWriter(workdir, "conversion", tensorboard=bool(config.train.tensorboard))
        if distributed.is_primary()
        else NullWriter()
    )
    try:
        for t, acc in out["accuracy"].items():
            extra = {"test_accuracy_unscaled": out["accuracy_unscaled"][t]} if "accuracy_unscaled" in out else {}
            writer.write(
                "conversion",
                int(t),
                time_steps=int(t),
                test_accuracy=acc,
                test_spikes_per_image=out["spikes"][t],
                scaling_factor=factor,
                **extra,
            )
    finally:
        writer.close()
    _log(f"[conversion] converted SNN accuracy per T (thresholds x{factor}): {out['accuracy']}")
    if "accuracy_unscaled" in out:
        _log(f"[conversion] with unscaled thresholds: {out['accuracy_unscaled']}")
    return out


def finetune_thresholds(config: ml_collections.ConfigDict, record: dict[str, Any]) -> dict[str, float]:
    """The thresholds STDB starts from: the converted SNN's (``record["scaled_thresholds"]``), or, with
    ``conversion.finetune_scaling_factor`` > 0, the balanced thresholds times that factor.

    Why a factor of its own: balanced for long simulations, x0.7 leaves the deep layers of a VGG5 all
    but silent within T=8 steps (docs/hybrid_stdb_diagnosis.md), and STDB's surrogate is ~0 for a
    neuron that has not fired yet, so fine-tuning at a short T needs a lower start (the paper: a smaller
    factor for a smaller T) while the converted SNN it is compared with keeps the official x0.7.
    """
    factor = float(config.conversion.get("finetune_scaling_factor", 0.0))
    if factor <= 0.0:
        return record["scaled_thresholds"]
    return conversion.scale_thresholds(record["thresholds"], factor, mode=config.conversion.balance)


def run(config: ml_collections.ConfigDict, workdir: str, *, mesh: Any) -> dict[str, Any]:
    """Run the pipeline of ``config`` in ``workdir``; ``mesh``: the run's mesh (built once by ``launch.py``)."""
    acfg = hybrid_config.ann_config(config)  # its data.normalization is the ANN's
    raw = data_lib.load_raw(config.data)
    splits = data_lib.normalize_splits(raw, config.data)
    ann_splits = data_lib.normalize_splits(raw, acfg.data)
    model = models.build(config.model, splits.num_classes)
    ann = stages.run_stage(
        acfg,
        workdir,
        "ann",
        model=models.build(acfg.model, splits.num_classes),
        splits=ann_splits,
        restore=hybrid_config.ann_restore(config),
        mesh=mesh,
    )
    record = convert(config, workdir, splits, ann.variables, model, mesh)
    t_finetune = int(config.model.time_steps)
    start_thresholds = finetune_thresholds(config, record)
    initial = conversion.snn_variables(jax.device_get(ann.variables), start_thresholds, mode=config.conversion.balance)
    start = None
    if start_thresholds != record["scaled_thresholds"]:  # the fine-tuning starts from another conversion
        start_sweep = _sweep(config, splits, model, initial, mesh, time_steps=(t_finetune,))
        start = {
            "scaling_factor": float(config.conversion.finetune_scaling_factor),
            "thresholds": start_thresholds,
            "time_steps": t_finetune,
            "accuracy": start_sweep["accuracy"][str(t_finetune)],
            "spikes": start_sweep["spikes"][str(t_finetune)],
        }
        _log(
            f"[stdb] starts from thresholds x{start['scaling_factor']}: {start['accuracy']:.4f} test accuracy at "
            f"T={t_finetune} ({start['spikes']:.0f} spikes per image)"
        )

    def spikes_at_finetune_t(variables: dict[str, Any]) -> dict[str, float]:
        spikes = _sweep(config, splits, model, jax.device_get(variables), mesh, time_steps=(t_finetune,))["spikes"]
        return {"test_spikes_per_image": spikes[str(t_finetune)]}

    result = loop.train_and_evaluate(
        hybrid_config.stdb_config(config),
        workdir,
        stage="stdb",
        model=model,
        splits=splits,
        initial_variables=initial,
        mesh=mesh,
        epoch_metrics=spikes_at_finetune_t if config.conversion.get("finetune_spikes", False) else None,
    )
    summary = dict(result.summary)
    summary.update(
        pipeline="hybrid_stdb",
        spike_grad=config.model.surrogate,
        ann={
            k: ann.summary.get(k)
            for k in ("best_test_accuracy", "final_test_accuracy", "epochs", "restored_from")
            if k in ann.summary
        },
        conversion={
            k: record[k]
            for k in (
                "thresholds",
                "scaled_thresholds",
                "accuracy",
                "spikes",
                "accuracy_unscaled",
                "balance_seconds",
                "sweep_seconds",
            )
            if k in record
        },
    )
    if start is not None:
        summary["finetune_start"] = start
    if config.conversion.get("eval_finetuned", False):
        finetuned = _sweep(config, splits, model, jax.device_get(result.state.variables), mesh)
        summary["finetuned_accuracy"], summary["finetuned_spikes"] = finetuned["accuracy"], finetuned["spikes"]
        _log(f"[stdb] fine-tuned SNN accuracy per T: {summary['finetuned_accuracy']}")
    return finish_run(workdir, summary)
