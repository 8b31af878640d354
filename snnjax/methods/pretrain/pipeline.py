"""Pretraining as a bridge from ANNs to SNNs (Lin et al., TNNLS 2024): pipe-S and pipe-D.

Stages, each checkpointed so that a re-run skips what is finished:

1. pretrain: train the ANN twin of ``config.model`` (the shared ResNet with ReLU, or the
   "sharpened ReLU" :class:`~snnjax.methods.pretrain.sharpened.SharpenedReLU`, T = 1, BN gamma
   initialised to ``config.pretrain.bn_scale_init`` = V_th 0.5 like tdBN) on ``config.pretrain.data``
   (an empty name means ``config.data``), or restore it from ``config.pretrain.checkpoint``;
2. transfer: a tree copy of every tensor but the ``config.pretrain.reinit`` modules
   (:func:`~snnjax.methods.pretrain.transfer.load_pretrained`); the record of what was copied goes
   to ``workdir/transfer_report.txt``;
3. finetune: train the LIF SNN (direct input for static data, event frames for pipe-D) with
   surrogate gradients, ``config.optim`` (SGD, lr x0.3 at epochs 2/4/6/8) and ``config.train``.

``config.pretrain.enabled = False`` runs stage 3 alone from a fresh initialisation: the "from
scratch" arm the paper compares against.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import ml_collections

from snnjax import data as data_lib
from snnjax import models, workdir_layout
from snnjax.methods.pretrain import config as pretrain_config
from snnjax.methods.pretrain import transfer
from snnjax.train import distributed, evaluate, loop, setup, stages
from snnjax.train.run_outputs import finish_run, write_text


def run(config: ml_collections.ConfigDict, workdir: str, *, mesh: Any) -> dict[str, Any]:
    """Run the pipeline of ``config`` in ``workdir``; ``mesh``: the run's mesh (built once by ``launch.py``)."""
    splits = data_lib.load_from_config(config.data)
    pretrain_config.check_event_steps(config, splits.image_shape, f"config.data.name={config.data.name!r}")
    snn = models.build(config.model, splits.num_classes)

    initial, pre_summary, counts = None, {}, {}
    trainable, opt_state_fn = None, None
    if config.pretrain.enabled:
        pcfg = pretrain_config.pretrain_config(config)
        psplits = data_lib.load_from_config(pcfg.data)
        if len(psplits.image_shape) != 3:
            raise ValueError(
                f"pretraining data {psplits.name!r} has samples of shape {psplits.image_shape}; the ANN "
                "(T = 1) needs static images [H, W, C]. Fix: set config.pretrain.data.name to a static "
                "dataset (e.g. digits, cifar10)."
            )
        ann = stages.run_stage(
            pcfg,
            workdir,
            pretrain_config.PRETRAIN_STAGE,
            splits=psplits,
            model=transfer.build_ann(config.model, psplits.num_classes, config.pretrain),
            restore=pretrain_config.pretrain_restore(config),
            mesh=mesh,
            extra_summary={
                "activation": config.pretrain.activation,
                "bn_scale_init": float(config.pretrain.bn_scale_init),
            },
        )
        pre_summary = ann.summary
        reinit = pretrain_config.parse_reinit(config.pretrain.reinit)
        fresh = setup.init_variables(snn, splits.image_shape, int(config.seed), mesh)
        initial, report = transfer.load_pretrained(jax.device_get(ann.variables), jax.device_get(fresh), reinit=reinit)
        write_text(workdir_layout.transfer_report(workdir), report.to_text(title="transfer", source="ANN") + "\n")
        counts = transfer.transfer_counts(report)
        if config.pretrain.eval_transfer:
            # What the ANN weights give the SNN before any fine-tuning (the paper's starting point).
            counts["test_accuracy_before_finetune"] = evaluate.evaluate(
                snn, initial, splits, batch_size=int(config.data.eval_batch_size), mesh=mesh
            )["correct"]
        distributed.say(
            f"[transfer] {report.transplanted} tensors loaded from the ANN, {report.kept} kept as initialised "
            f"(re-initialised: {', '.join(reinit) or 'none'}); see {workdir_layout.transfer_report(workdir)}"
        )
        copied = transfer.copied_params(report)
        if config.pretrain.get("freeze_loaded", False):
            # Official pipe-D: every loaded tensor frozen (requires_grad=False); the new modules train.
            trainable = transfer.trainable_mask(initial["params"], copied)
            counts["trainable_tensors"] = sum(bool(t) for t in jax.tree.leaves(trainable))
            distributed.say(
                f"[transfer] freeze_loaded: {len(copied)} loaded parameter tensors frozen, "
                f"{counts['trainable_tensors']} trained"
            )
        if config.pretrain.get("load_optimizer_state", False):
            # Official pipe-S fine-tuning: optimizer.load_state_dict of the pretraining run (momentum).
            opt_state_fn = functools.partial(
                transfer.load_momentum, source=jax.device_get(ann.opt_state), copied=copied
            )
            counts["momentum_loaded"] = True

    result = loop.train_and_evaluate(
        config,
        workdir,
        stage=pretrain_config.FINETUNE_STAGE,
        model=snn,
        splits=splits,
        initial_variables=initial,
        trainable=trainable,
        initial_opt_state=opt_state_fn,
        mesh=mesh,
    )
    summary = dict(result.summary)
    summary.update(
        pipeline="pretrain",
        pretrained=bool(config.pretrain.enabled),
        input="events" if len(splits.image_shape) == 4 else "static",
        pretrain=pre_summary,
        transfer=counts,
    )
    return finish_run(workdir, summary)
