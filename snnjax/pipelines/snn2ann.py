"""SNN2ANN (Tang et al., Pattern Recognition; arXiv 2206.09449): train an SNN through the ANN
branch that shares its weights.

One stage (``snn2ann``): :func:`snnjax.train.loop.train_and_evaluate` with the SNN2ANN train step
(:func:`snnjax.snn2ann.make_train_step`: CE on the ANN branch's logits, ATA, BN statistics). The
engine's evaluation calls the model with ``train=False``, which is the SNN branch, so the logged
test accuracy, the best checkpoint and ``best_test_accuracy`` are the SNN's.

``config.arm = "bptt"`` trains the same plain conv net as an SNN directly with surrogate gradients
through time (stage ``bptt``, the engine's standard step): the baseline of the paper's
time/memory comparison.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from snnjax import data as data_lib
from snnjax import snn2ann
from snnjax.data import pipeline as data_pipeline
from snnjax.pipelines.common import finish_run
from snnjax.train import loop, steps

ARMS = ("snn2ann", "bptt")


def stage_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The run config as the engine reads it: ``model.name`` names the network in its summary."""
    if config.arm not in ARMS:
        raise ValueError(f"config.arm={config.arm!r} is not valid; choose one of {list(ARMS)}")
    if config.kd.enabled:
        raise ValueError("config.kd.enabled=True: SNN2ANN trains without a teacher; set it to False")
    cfg = ml_collections.ConfigDict(config.to_dict())
    prefix = "bptt" if config.arm == "bptt" else "snn2ann"
    cfg.model.name = f"{prefix}_{config.model.arch}"
    return cfg


def evaluate_branches(model: snn2ann.SNN2ANNVGG | snn2ann.SNN2ANNResNet, variables: dict[str, Any],
                      split: data_lib.ArrayDataset, mean, std, batch_size: int) -> dict[str, float]:
    """Test accuracy of both branches in inference mode and the SNN's mean firing rate.

    The ANN branch here uses BN running statistics, no dropout, and (through the mapping units)
    the SNN's spike counts: it is the network the loss trained, not an independent ANN.
    """

    @jax.jit
    def batch_metrics(variables, images, labels, index):
        x, y, mask = data_pipeline.make_eval_batch(images, labels, index, batch_size=batch_size, mean=mean, std=std)
        out, stats = model.apply(variables, x, train=False, ann=True, method="branches", mutable=["spike_stats"])
        rates = jnp.stack([jnp.mean(r) for r in jax.tree.leaves(stats)])
        correct = lambda logits: jnp.sum((jnp.argmax(logits, -1) == y) & mask)  # noqa: E731
        return correct(out.snn_logits), correct(out.ann_logits), jnp.mean(rates)

    images, labels = jnp.asarray(split.images), jnp.asarray(split.labels)
    n_batches = data_pipeline.num_eval_batches(split.num_examples, batch_size)
    sums = np.array([[float(v) for v in batch_metrics(variables, images, labels, jnp.int32(i))]
                     for i in range(n_batches)])
    return {"snn_test_accuracy": sums[:, 0].sum() / split.num_examples,
            "ann_branch_test_accuracy": sums[:, 1].sum() / split.num_examples,
            "snn_firing_rate": float(sums[:, 2].mean())}


def threshold_summary(thresholds: dict[str, Any]) -> dict[str, float]:
    """Mean threshold per spiking layer, keyed by its module path."""
    flat = jax.tree_util.tree_leaves_with_path(jax.device_get(thresholds))
    return {"/".join(str(getattr(k, "key", k)) for k in path[:-1]): float(np.mean(v)) for path, v in flat}


def with_normalization(splits: data_lib.DatasetSplits, data_cfg: ml_collections.ConfigDict) -> data_lib.DatasetSplits:
    """``splits`` with ``config.data.mean`` / ``std`` when set (the official CIFAR constants of
    ``snnjax.snn2ann.models.OFFICIAL_MEAN`` / ``OFFICIAL_STD``); empty tuples keep the dataset's own."""
    mean, std = tuple(data_cfg.get("mean", ()) or ()), tuple(data_cfg.get("std", ()) or ())
    if not mean and not std:
        return splits
    channels = splits.image_shape[-1]
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ValueError(f"config.data.mean={mean} / std={std} need {channels} values each (std > 0) for "
                         f"{splits.name}; set both to () to use the dataset's statistics")
    return dataclasses.replace(splits, mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std))


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    cfg = stage_config(config)
    splits = with_normalization(loop.load_data(cfg.data), cfg.data)
    bptt = cfg.arm == "bptt"
    model = snn2ann.build_model(cfg.model, splits.num_classes, bptt=bptt)
    make_step = steps.make_train_step if bptt else snn2ann.make_train_step
    result = loop.train_and_evaluate(cfg, workdir, stage=cfg.arm, model=model, splits=splits, make_step=make_step)
    summary = dict(result.summary)
    summary.update(pipeline="snn2ann", arm=cfg.arm, arch=cfg.model.arch, time_steps=int(cfg.model.time_steps))
    if not bptt:
        summary.update(mapping_unit=cfg.model.mapping_unit, ata=bool(cfg.model.adapt_threshold))
        variables = jax.device_get(result.state.variables)
        branch = evaluate_branches(model, variables, splits.test, tuple(splits.mean), tuple(splits.std),
                                   min(int(cfg.data.eval_batch_size), splits.test.num_examples))
        summary["final"] = branch
        summary["threshold_mean_per_layer"] = threshold_summary(variables["thresholds"])
        print(f"[snn2ann] final SNN test accuracy {branch['snn_test_accuracy']:.4f}, ANN branch "
              f"{branch['ann_branch_test_accuracy']:.4f}, SNN firing rate {branch['snn_firing_rate']:.3f}",
              file=sys.stderr)
    return finish_run(workdir, summary)
