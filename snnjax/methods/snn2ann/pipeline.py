"""SNN2ANN (Tang et al., Pattern Recognition; arXiv 2206.09449): train an SNN through the ANN
branch that shares its weights.

One stage (``snn2ann``): :func:`snnjax.train.loop.train_and_evaluate` with the SNN2ANN train step
(:func:`snnjax.methods.snn2ann.step.make_train_step`: CE on the ANN branch's logits, ATA, BN
statistics). The engine's evaluation calls the model with ``train=False``, which is the SNN branch,
so the logged test accuracy, the best checkpoint and ``best_test_accuracy`` are the SNN's.

``config.arm = "bptt"`` (model ``bptt_vgg``) trains the same plain conv net as an SNN directly with
surrogate gradients through time (stage ``bptt``, the engine's standard step): the baseline of the
paper's time/memory comparison.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from snnjax import data as data_lib
from snnjax import losses, models
from snnjax.analysis.spikes import spike_summary
from snnjax.data import batches as data_batches
from snnjax.methods.snn2ann import step as snn2ann_step
from snnjax.methods.snn2ann.models import split_name
from snnjax.train import distributed, evaluate, loop, steps
from snnjax.train.run_outputs import finish_run


def branch_eval_step(model):
    """Per-batch sums of both branches in inference mode and the SNN's firing rate (for :mod:`snnjax.train.evaluate`).

    The ANN branch here uses BN running statistics, no dropout, and (through the mapping units)
    the SNN's spike counts: it is the network the loss trained, not an independent ANN.
    """

    def eval_step(variables, x, y, mask, key=None):
        del key
        out, stats = model.apply(variables, x, train=False, ann=True, method="branches", mutable=["spike_stats"])
        rate = jnp.mean(jnp.stack([jnp.mean(r) for r in jax.tree.leaves(stats)]))
        count = jnp.sum(mask.astype(jnp.float32))
        return {
            "snn_test_accuracy": losses.correct_count(out.snn_logits, y, mask),
            "ann_branch_test_accuracy": losses.correct_count(out.ann_logits, y, mask),
            "snn_firing_rate": rate * count,
            "count": count,
        }

    return eval_step


def threshold_summary(thresholds: dict[str, Any]) -> dict[str, float]:
    """Mean threshold per spiking layer, keyed by its module path."""
    flat = jax.tree_util.tree_leaves_with_path(jax.device_get(thresholds))
    return {"/".join(str(getattr(k, "key", k)) for k in path[:-1]): float(np.mean(v)) for path, v in flat}


def test_spikes(
    model: Any, variables: dict[str, Any], splits: data_lib.DatasetSplits, batch_size: int
) -> dict[str, Any]:
    """Spikes, firing rate and synaptic operations per test image of the trained SNN (inference mode,
    every test image; :func:`snnjax.analysis.spikes.spike_summary`, which counts the spikes itself)."""
    images = np.asarray(data_batches.normalize(splits.test.images, splits.mean, splits.std))
    return spike_summary(model, variables, images, batch_size=batch_size)


def run(config: ml_collections.ConfigDict, workdir: str, *, mesh: Any) -> dict[str, Any]:
    """Run the pipeline of ``config`` in ``workdir``; ``mesh``: the run's mesh (built once by ``launch.py``)."""
    splits = data_lib.load_from_config(config.data)  # data.mean/std: the official CIFAR constants
    model = models.build(config.model, splits.num_classes)
    bptt = config.arm == "bptt"
    make_step = steps.make_train_step if bptt else snn2ann_step.make_train_step
    result = loop.train_and_evaluate(
        config, workdir, stage=config.arm, model=model, splits=splits, make_step=make_step, mesh=mesh
    )
    summary = dict(result.summary)
    summary.update(
        pipeline="snn2ann",
        arm=config.arm,
        arch=split_name(config.model.name)[1],
        time_steps=int(config.model.time_steps),
        spikes=test_spikes(model, jax.device_get(result.state.variables), splits, int(config.data.eval_batch_size)),
    )
    distributed.say(f"[{config.arm}] spikes per test image {summary['spikes']['spikes_per_example']:,.1f}")
    if not bptt:
        summary.update(mapping_unit=config.model.mapping_unit, ata=bool(config.model.adapt_threshold))
        variables = jax.device_get(result.state.variables)
        branch = evaluate.evaluate(
            model,
            variables,
            splits,
            batch_size=int(config.data.eval_batch_size),
            eval_step=branch_eval_step(model),
            mesh=mesh,
        )
        summary["final"] = branch
        summary["threshold_mean_per_layer"] = threshold_summary(variables["thresholds"])
        distributed.say(
            f"[snn2ann] final SNN test accuracy {branch['snn_test_accuracy']:.4f}, ANN branch "
            f"{branch['ann_branch_test_accuracy']:.4f}, SNN firing rate {branch['snn_firing_rate']:.3f}"
        )
    return finish_run(workdir, summary)
