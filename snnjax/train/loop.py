"""The training loop every pipeline stage runs: train, evaluate, checkpoint, log, resume.

:func:`train_and_evaluate` trains one model (ANN or SNN) on an in-memory dataset that is placed on
the devices once; the batch of every step is built inside the jitted step. A run restarted with the
same ``workdir`` resumes from its latest checkpoint and continues exactly as if uninterrupted
(same example order, same random augmentation, same optimizer and BN state).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from snnjax import data as data_lib
from snnjax import models
from snnjax.data import pipeline as data_pipeline
from snnjax.data.placement import put_dataset
from snnjax.train import checkpoint as ckpt_lib
from snnjax.train import evaluate as evaluate_lib
from snnjax.train import mesh as mesh_lib
from snnjax.train import optim, preflight, steps
from snnjax.train.metric_writer import MetricWriter
from snnjax.train.state import TrainState, create_train_state


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss or gradient."""


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A frozen teacher for knowledge distillation: its model and variables."""

    model: nn.Module
    variables: Any


@dataclasses.dataclass
class StageResult:
    """What a finished stage hands to the next one."""

    summary: dict[str, Any]
    state: TrainState
    model: nn.Module


def load_data(data_cfg: ml_collections.ConfigDict) -> data_lib.DatasetSplits:
    """The dataset named by ``config.data`` (see :func:`snnjax.data.load_dataset`), cut to
    ``data.train_subset`` training examples when that is > 0."""
    splits = data_lib.load_dataset(
        data_cfg.name, data_dir=data_cfg.data_dir or None, download=bool(data_cfg.download), **dict(data_cfg.options)
    )
    return data_lib.take_train_subset(splits, int(data_cfg.get("train_subset", 0)))


def init_variables(model: nn.Module, image_shape: tuple[int, ...], seed: int, mesh) -> dict[str, Any]:
    """Initial variables (``params`` and mutable collections such as ``batch_stats``), replicated."""
    sample = jnp.zeros((1,) + tuple(image_shape), jnp.float32)

    def init(key):
        variables = model.init({"params": key, **steps.model_rngs(key)}, sample, train=False)
        return {k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}

    key = jax.random.fold_in(jax.random.key(seed), 1)
    return jax.jit(init, out_shardings=mesh_lib.replicated(mesh))(key)


def count_params(params: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def _mean(records: list[dict[str, float]], key: str) -> float:
    return float(np.mean([r[key] for r in records])) if records else float("nan")


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    stage: str = "train",
    model: nn.Module | None = None,
    splits: data_lib.DatasetSplits | None = None,
    initial_variables: dict[str, Any] | None = None,
    teacher: Teacher | None = None,
    make_step: Any = steps.make_train_step,
    trainable: Any = None,
    initial_opt_state: Any = None,
) -> StageResult:
    """Train ``config.model`` on ``config.data`` and evaluate it every epoch.

    Args:
      config: a run config (:func:`snnjax.config.base_config` schema).
      workdir: run directory; checkpoints go to ``workdir/checkpoints/<stage>``, records to
        ``workdir/metrics.jsonl``, TensorBoard to ``workdir/tensorboard/<stage>``.
      stage: name of this stage in logs and checkpoints.
      model: the model to train (default: built from ``config.model``).
      splits: the dataset (default: loaded from ``config.data``).
      initial_variables: start from these variables (e.g. transplanted) instead of a fresh init;
        ignored when resuming from a checkpoint.
      teacher: distil from this teacher (``config.kd`` gives temperature and alpha).
      make_step: ``(model, tx, *, distillation, nonfinite) -> train_step`` (default
        :func:`snnjax.train.steps.make_train_step`); pipelines with their own objective pass theirs.
      trainable: a params-shaped tree of bools; False leaves are frozen (:func:`optim.freeze`).
      initial_opt_state: ``fresh_opt_state -> opt_state`` applied to a fresh (not resumed) state,
        e.g. to load momentum buffers from an earlier stage.

    Returns:
      the stage summary (also in ``workdir/<stage>_summary.json``), the final state and the model.
    """
    mesh = mesh_lib.make_mesh()
    repl = mesh_lib.replicated(mesh)
    batch_size = int(config.data.batch_size)
    mesh_lib.check_batch_size(batch_size, mesh)
    splits = splits or load_data(config.data)
    model = model or models.build(config.model, splits.num_classes)
    spe = data_pipeline.steps_per_epoch(splits.train.num_examples, batch_size)
    epochs = int(config.train.epochs)
    total_steps = spe * epochs
    schedule = optim.learning_rate_schedule(config.optim, spe, epochs)
    tx = optim.make_optimizer(config.optim, schedule)
    if trainable is not None:
        tx = optim.freeze(tx, trainable)

    variables = initial_variables or init_variables(model, splits.image_shape, int(config.seed), mesh)
    variables = jax.device_put({k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}, repl)
    state_key = jax.random.fold_in(jax.random.key(int(config.seed)), 2)
    state = jax.jit(lambda v: create_train_state(v, tx, state_key), out_shardings=repl)(variables)
    if initial_opt_state is not None:
        state = state.replace(opt_state=jax.device_put(initial_opt_state(jax.device_get(state.opt_state)), repl))

    ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints", stage), keep=int(config.train.keep_checkpoints))
    meta = {"epoch": 0, "best_test_accuracy": -1.0, "best_epoch": -1, "best_step": -1}
    latest = ckpt.latest_step()
    if latest is not None:
        diffs = preflight.resume_mismatches(ckpt.read_config(latest), config.to_dict())
        if diffs:
            raise ckpt_lib.CheckpointError(
                f"{ckpt.directory} holds a run of a different model/data config ({'; '.join(diffs)}). "
                "Nothing was overwritten. Fix: use the original config to resume, or a fresh --workdir."
            )
        state, meta = ckpt.restore(latest, ckpt_lib.abstract_like(state))
        print(
            f"[{stage}] resumed from {ckpt.directory / str(latest)} (step {latest}, epoch {meta['epoch']})",
            file=sys.stderr,
        )
    start_step = int(state.step)
    writer = MetricWriter(
        workdir,
        stage,
        resume_step=start_step if latest is not None else None,
        tensorboard=bool(config.train.tensorboard),
    )

    train_images, train_labels = put_dataset(splits.train, repl)
    test_images, test_labels = put_dataset(splits.test, repl)
    n_dev = mesh.devices.size
    eval_bs = max(n_dev, int(config.data.eval_batch_size) // n_dev * n_dev)

    distill = None
    teacher_vars = None
    if teacher is not None:
        distill = steps.Distillation(teacher.model, float(config.kd.temperature), float(config.kd.alpha))
        teacher_vars = jax.device_put(teacher.variables, repl)
    train_step = make_step(model, tx, distillation=distill, nonfinite=config.train.nonfinite)
    device_data = steps.DeviceData(
        batch_size,
        tuple(splits.mean),
        tuple(splits.std),
        int(config.data.crop_padding),
        bool(config.data.flip),
        int(config.seed),
    )
    step_fn = jax.jit(
        steps.make_device_train_step(train_step, device_data, mesh), out_shardings=(repl, repl), donate_argnums=0
    )
    evaluator = evaluate_lib.make_evaluator(
        steps.make_eval_step(model),
        test_images,
        test_labels,
        batch_size=eval_bs,
        mean=splits.mean,
        std=splits.std,
        mesh=mesh,
        out_shardings=repl,
    )

    t_compile = time.perf_counter()
    step_fn = step_fn.lower(state, train_images, train_labels, teacher_vars).compile()
    evaluator.compile(state.variables)
    compile_s = time.perf_counter() - t_compile

    def evaluate(variables) -> dict[str, float]:
        means = evaluator(variables)
        return {"test_accuracy": means["correct"], "test_loss": means["loss_sum"]}

    config_json = config.to_dict()
    log_every = int(config.train.log_every_steps)
    ckpt_every = int(config.train.checkpoint_every_steps)
    stop_after = int(config.train.stop_after_steps)
    last_saved = latest
    pending: list[tuple[int, dict[str, jax.Array]]] = []
    epoch_records: list[dict[str, float]] = []
    last_eval: dict[str, float] = {}
    t_start = time.perf_counter()
    t_log, train_time, images_seen = t_start, 0.0, 0
    progress = _progress(config, stage, start_step, total_steps)

    def flush(step: int) -> None:
        nonlocal pending, t_log, train_time, images_seen
        if not pending:
            return
        host = jax.device_get([m for _, m in pending])
        elapsed = time.perf_counter() - t_log
        n = len(pending)
        bad = [s for (s, _), m in zip(pending, host) if float(m["finite"]) < 1.0]
        if bad and config.train.nonfinite == "stop":
            ckpt.wait()
            raise NonFiniteLossError(
                f"[{stage}] non-finite loss or gradient at step {bad[0]} (epoch {bad[0] // spe}). "
                f"Last good checkpoint: {ckpt.directory / str(last_saved) if last_saved is not None else 'none'}. "
                "Fixes: lower config.optim.lr, use config.model.dtype=float32, or set "
                "config.train.nonfinite=skip to skip such updates."
            )
        epoch_records.extend({k: float(v) for k, v in m.items()} for m in host)
        train_time += elapsed
        images_seen += n * batch_size
        # Every scalar a step returns is logged (custom steps add their own, e.g. SNN2ANN's).
        means = {k: _mean(epoch_records[-n:], k) for k in epoch_records[-1] if k != "finite"}
        writer.write(
            "train",
            step,
            epoch=step / spe,
            **means,
            lr=float(schedule(step - 1)),
            skipped_steps=len(bad),
            images_per_s=n * batch_size / max(elapsed, 1e-9),
        )
        pending = []
        t_log = time.perf_counter()

    step = start_step
    try:
        while step < total_steps:
            if stop_after and step - start_step >= stop_after:
                flush(step)
                ckpt.wait()
                print(
                    f"[{stage}] stopping after {stop_after} steps as configured (train.stop_after_steps)",
                    file=sys.stderr,
                )
                sys.exit(3)
            state, metrics = step_fn(state, train_images, train_labels, teacher_vars)
            pending.append((step, metrics))
            step += 1
            progress.update(1)
            epoch_end = step % spe == 0
            if step % log_every == 0 or epoch_end:
                flush(step)
            if epoch_end:
                epoch = step // spe
                record = {
                    "epoch": epoch,
                    "train_loss": _mean(epoch_records, "loss"),
                    "train_accuracy": _mean(epoch_records, "accuracy"),
                    "lr": float(schedule(step - 1)),
                }
                epoch_records = []
                metrics_for_ckpt = None
                if epoch % int(config.train.eval_every_epochs) == 0 or step == total_steps:
                    last_eval = evaluate(state.variables)
                    record.update(last_eval)
                    metrics_for_ckpt = {"test_accuracy": last_eval["test_accuracy"]}
                    if last_eval["test_accuracy"] > meta["best_test_accuracy"]:
                        meta.update(best_test_accuracy=last_eval["test_accuracy"], best_epoch=epoch, best_step=step)
                meta["epoch"] = epoch
                record["best_test_accuracy"] = meta["best_test_accuracy"]
                writer.write("epoch", step, **record)
                progress.set_postfix_str(_postfix(record))
                ckpt.save(step, state, meta=dict(meta), config=config_json, metrics=metrics_for_ckpt)
                last_saved = step
            elif ckpt_every and step % ckpt_every == 0:
                flush(step)
                ckpt.save(step, state, meta=dict(meta), config=config_json)
                last_saved = step
        flush(step)
    finally:
        progress.close()
        ckpt.wait()
        writer.close()

    if not last_eval:  # the stage was already complete: evaluate the restored state for the summary
        last_eval = evaluate(state.variables)
    summary = {
        "stage": stage,
        "dataset": splits.name,
        "model": config.model.name,
        "neuron": config.model.neuron,
        "time_steps": int(config.model.time_steps),
        "num_params": count_params(state.params),
        "epochs": epochs,
        "steps": int(state.step),
        "best_test_accuracy": float(meta["best_test_accuracy"]),
        "best_epoch": int(meta["best_epoch"]),
        "final_test_accuracy": float(last_eval["test_accuracy"]),
        "final_test_loss": float(last_eval["test_loss"]),
        "compile_time_s": compile_s,
        "train_time_s": train_time,
        "train_images_per_s": images_seen / train_time if train_time else None,
        "wall_time_s": time.perf_counter() - t_start + compile_s,
        "devices": n_dev,
    }
    return StageResult(summary=summary, state=state, model=model)


def _progress(config, stage: str, start: int, total: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=start,
        desc=stage,
        unit="step",
        disable=not config.train.progress_bar,
        dynamic_ncols=True,
        file=sys.stderr,
    )


def _postfix(record: dict[str, float]) -> str:
    parts = [f"loss {record['train_loss']:.3f}", f"train {record['train_accuracy']:.3f}"]
    if "test_accuracy" in record:
        parts.append(f"test {record['test_accuracy']:.3f}")
    return ", ".join(parts)


def stage_checkpoint_dir(workdir: str, stage: str) -> str:
    return os.path.join(workdir, "checkpoints", stage)


def find_checkpoint_dir(path: str, stages: tuple[str, ...], *, key: str, what: str, fix: str) -> str:
    """The checkpoint directory behind a user-given ``path``.

    ``path`` may be a run's workdir (then ``<path>/checkpoints/<stage>`` for the first of ``stages``
    that holds a step directory) or a checkpoint directory itself. ``key`` (the config key),
    ``what`` and ``fix`` word the error raised when none holds a checkpoint.
    """
    candidates = [stage_checkpoint_dir(path, stage) for stage in stages] + [path]
    for candidate in candidates:
        if os.path.isdir(candidate) and any(name.isdigit() for name in os.listdir(candidate)):
            return candidate
    raise FileNotFoundError(
        f"{key}={path!r} holds no {what} checkpoint (looked in {', '.join(candidates)}). Fix: {fix}"
    )


def restore_stage(
    config: ml_collections.ConfigDict, checkpoint_dir: str, *, model: nn.Module, splits: data_lib.DatasetSplits
) -> tuple[TrainState, dict[str, Any]] | None:
    """The latest ``(state, meta)`` in ``checkpoint_dir`` for ``config``'s model/optimizer, or None.

    Nothing is compiled: the target structure comes from ``jax.eval_shape``.
    """
    if not os.path.isdir(checkpoint_dir):
        return None
    mesh = mesh_lib.make_mesh()
    repl = mesh_lib.replicated(mesh)
    spe = data_pipeline.steps_per_epoch(splits.train.num_examples, int(config.data.batch_size))
    tx = optim.make_optimizer(config.optim, optim.learning_rate_schedule(config.optim, spe, int(config.train.epochs)))
    sample = jnp.zeros((1,) + tuple(splits.image_shape), jnp.float32)

    def fresh_state():
        key = jax.random.key(0)
        variables = model.init({"params": key, **steps.model_rngs(key)}, sample, train=False)
        variables = {k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}
        return create_train_state(variables, tx, jax.random.key(0))

    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), jax.eval_shape(fresh_state)
    )
    ckpt = ckpt_lib.Checkpointer(checkpoint_dir, keep=int(config.train.keep_checkpoints), async_save=False)
    try:
        latest = ckpt.latest_step()
        return None if latest is None else ckpt.restore(latest, abstract)
    finally:
        ckpt.close()


def total_steps(config: ml_collections.ConfigDict, splits: data_lib.DatasetSplits) -> int:
    return data_pipeline.steps_per_epoch(splits.train.num_examples, int(config.data.batch_size)) * int(
        config.train.epochs
    )
