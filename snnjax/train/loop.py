"""The training loop every pipeline stage runs: train, evaluate, checkpoint, log, resume.

:func:`train_and_evaluate` trains one model (ANN or SNN) on a dataset held in memory (placed on the
devices once) or streamed from records, through one data path (:mod:`snnjax.train.inputs`); the batch
of every step is built inside the jitted step. A run restarted with the
same ``workdir`` resumes from its latest checkpoint and continues exactly as if uninterrupted
(same example order, same random augmentation, same optimizer and BN state).

It reads as its named steps, each usable (and tested) on its own: :func:`set_up` (data, model,
the stage's :func:`snnjax.train.setup.plan`, step-0 state, checkpointer), :func:`resume` (latest checkpoint, if any),
:func:`start` (logs, data placement, compilation), :func:`train_epoch`, :func:`end_epoch`
(:func:`evaluate`, epoch record, :func:`checkpoint`), :func:`close` and :func:`finish` (summary).
They share one :class:`StageRun`. In a multi-process run every process executes all of them; only
process 0 writes logs (:mod:`snnjax.train.distributed`).
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from snnjax import data as data_lib
from snnjax import epoch_clock, models, workdir_layout
from snnjax import progress as progress_lib
from snnjax.train import checkpoint as ckpt_lib
from snnjax.train import distributed, preflight, setup, sltt, steps
from snnjax.train import evaluate as evaluate_lib
from snnjax.train import inputs as inputs_lib
from snnjax.train import mesh as mesh_lib
from snnjax.train.metric_writer import MetricWriter, NullWriter
from snnjax.train.state import TrainState


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


def count_params(params: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def _mean(records: list[dict[str, float]], key: str) -> float:
    return float(np.mean([r[key] for r in records])) if records else float("nan")


FRESH_META = {"epoch": 0, "best_test_accuracy": -1.0, "best_epoch": -1, "best_step": -1}
# Totals over every process that trained the stage, kept in each checkpoint's meta so that the summary of
# a resumed run counts the whole training, not only its last process (checkpoints without them: 0).
TOTALS = ("train_time_s", "images_seen", "wall_time_s")


@dataclasses.dataclass
class StageRun:
    """One stage in training: what :func:`set_up` fixes for the stage and what the later steps change.

    The named steps of :func:`train_and_evaluate` (``set_up``, ``resume``, ``start``,
    ``train_epoch``, ``end_epoch``, ``finish``) each take the run and advance it.
    """

    config: ml_collections.ConfigDict
    workdir: str
    stage: str
    mesh: Mesh
    model: nn.Module
    splits: data_lib.DatasetSplits
    plan: setup.Plan  # steps per epoch, total steps, schedule, optimizer, abstract state
    state: TrainState
    ckpt: ckpt_lib.Checkpointer
    train_step: Any  # the pure step, before on-device batching and jit
    teacher_variables: Any = None
    meta: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(FRESH_META))
    start_step: int = 0
    step: int = 0  # the global step reached (host copy, no device sync)
    resumed_from: int | None = None  # the checkpoint step this run continued from
    last_saved: int | None = None
    # set by start():
    writer: Any = None
    progress: Any = None
    inputs: inputs_lib.TrainInputs | None = None  # the step's data arguments from the current step on
    step_fn: Any = None  # the compiled step(state, images, labels, teacher_variables)
    evaluator: Any = None  # snnjax.train.evaluate.Evaluator over the test split
    epoch_metrics: Any = None  # optional variables -> {name: float}, logged with every evaluation
    compile_s: float = 0.0
    # bookkeeping of the steps:
    pending: list[tuple[int, dict[str, jax.Array]]] = dataclasses.field(default_factory=list)
    epoch_records: list[dict[str, float]] = dataclasses.field(default_factory=list)
    last_eval: dict[str, float] = dataclasses.field(default_factory=dict)
    t_start: float = 0.0
    t_log: float = 0.0
    train_time: float = 0.0  # this process's, s
    train_time_at_epoch_start: float = 0.0  # run.train_time when the current epoch began (this process)
    images_seen: int = 0  # this process's
    before: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(TOTALS, 0.0))

    @property
    def n_devices(self) -> int:
        return int(self.mesh.devices.size)

    @property
    def schedule(self) -> Any:
        return self.plan.schedule

    @property
    def batch_size(self) -> int:
        return self.plan.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return self.plan.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.plan.total_steps


def set_up(
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
    mesh: Mesh,
) -> StageRun:
    """Data, model, the stage's :class:`~snnjax.train.setup.Plan`, the step-0 state (replicated) and its
    checkpointer. ``mesh``: the run's mesh, built once by the caller (``launch.py``)."""
    repl = mesh_lib.replicated(mesh)
    splits = splits or data_lib.load_from_config(config.data)
    model = model or models.build(config.model, splits.num_classes)
    stage_plan = setup.plan(config, splits, model, mesh, trainable=trainable)
    variables = initial_variables or setup.init_variables(model, splits.image_shape, int(config.seed), mesh)
    # A fresh state only: resume() replaces it (and any initial_opt_state) by the checkpoint's.
    state = setup.initial_state(stage_plan, variables, int(config.seed), mesh, initial_opt_state=initial_opt_state)

    make_step = sltt.choose_make_step(config.train, model, make_step)  # train.through_time
    distill = teacher_vars = None
    if teacher is not None:
        distill = steps.Distillation(teacher.model, float(config.kd.temperature), float(config.kd.alpha))
        teacher_vars = jax.device_put(teacher.variables, repl)
    # Passed only when not plain CE, so a make_step factory without an ``objective`` keyword keeps working
    # (config validation refuses train.loss="tet" where such a factory is used).
    chosen = steps.objective_from_config(config.train)
    objective = {"objective": chosen} if chosen.loss != "ce" else {}
    run = StageRun(
        config=config,
        workdir=workdir,
        stage=stage,
        mesh=mesh,
        model=model,
        splits=splits,
        plan=stage_plan,
        state=state,
        ckpt=ckpt_lib.Checkpointer(
            workdir_layout.stage_checkpoints(workdir, stage), keep=int(config.train.keep_checkpoints)
        ),
        # Every step feeds the epoch to scheduled layers (snnjax.epoch_clock; a no-op for other models).
        train_step=epoch_clock.fed(
            make_step(model, stage_plan.tx, distillation=distill, nonfinite=config.train.nonfinite, **objective),
            stage_plan.steps_per_epoch,
        ),
        teacher_variables=teacher_vars,
    )
    return run


def stopped_early(meta: dict[str, Any]) -> bool:
    """Whether a stage ended early (``train.stop_at_accuracy`` or ``train.stop_on_plateau_epochs``; its
    checkpoint meta says so)."""
    return int(meta.get("stopped_epoch", -1)) >= 0


def stage_complete(step: int, total_steps: int, meta: dict[str, Any]) -> bool:
    """A stage is complete when all its steps ran, or when it stopped early."""
    return step >= total_steps or stopped_early(meta)


def early_stop_reason(train: ml_collections.ConfigDict, history: list[float]) -> str | None:
    """Why a stage ends after the epoch whose test accuracy is ``history[-1]`` (every evaluated epoch's
    accuracy, in order), or None: ``"accuracy"`` once it reaches ``train.stop_at_accuracy`` (> 0);
    ``"plateau"`` once it gained less than ``train.stop_on_plateau_gain`` over the last
    ``train.stop_on_plateau_epochs`` (> 0) evaluations."""
    target = float(train.get("stop_at_accuracy", 0.0))
    if target > 0.0 and history and history[-1] >= target:
        return "accuracy"
    n = int(train.get("stop_on_plateau_epochs", 0))
    if n > 0 and len(history) > n and history[-1] - history[-1 - n] < float(train.get("stop_on_plateau_gain", 0.0)):
        return "plateau"
    return None


def resume(run: StageRun) -> int | None:
    """Continue from the stage's latest checkpoint, if any: its step (or None for a fresh start).

    Refuses (:class:`~snnjax.train.checkpoint.CheckpointError`) a checkpoint of another model/data
    config, without touching it.
    """
    latest = run.ckpt.latest_step()
    if latest is not None:
        diffs = preflight.resume_mismatches(run.ckpt.read_config(latest), run.config.to_dict())
        if diffs:
            raise ckpt_lib.CheckpointError(
                f"{run.ckpt.directory} holds a run of a different model/data config ({'; '.join(diffs)}). "
                "Nothing was overwritten. Fix: use the original config to resume, or a fresh --workdir."
            )
        # The newest checkpoint that restores, in the structure of the state being trained (given initial
        # variables may carry collections that a fresh init does not); damaged newer ones are moved aside.
        latest, run.state, run.meta = run.ckpt.restore_newest(ckpt_lib.abstract_like(run.state))
        run.before = {k: float(run.meta.get(k, 0.0)) for k in TOTALS}
        distributed.say(
            f"[{run.stage}] resumed from {run.ckpt.directory / str(latest)} (step {latest}, epoch {run.meta['epoch']})"
        )
    run.resumed_from = run.last_saved = latest
    run.start_step = run.step = int(run.state.step)
    return latest


def start(run: StageRun) -> None:
    """Open the logs (process 0), place the data on the mesh and compile the train and eval steps."""
    config, repl = run.config, mesh_lib.replicated(run.mesh)
    if distributed.is_primary():
        run.writer = MetricWriter(
            run.workdir,
            run.stage,
            resume_step=run.start_step if run.resumed_from is not None else None,
            tensorboard=bool(config.train.tensorboard),
        )
    else:
        run.writer = NullWriter()
    device_data = inputs_lib.DeviceData.from_config(config, run.splits, run.batch_size)
    # Resident or streamed, as run.splits is: from here on the loop sees one data path.
    run.inputs, eval_inputs = inputs_lib.create_inputs(
        run.splits,
        device_data,
        eval_batch_size=int(config.data.eval_batch_size),
        mesh=run.mesh,
        start_step=run.start_step,
    )
    run.evaluator = evaluate_lib.make_evaluator(steps.make_eval_step(run.model), eval_inputs, out_shardings=repl)
    t_compile = time.perf_counter()
    run.step_fn = compile_train_step(run.train_step, run.inputs, run.state, run.teacher_variables, run.mesh)
    run.evaluator.compile(run.state.variables)
    run.compile_s = time.perf_counter() - t_compile
    run.progress = _progress(config, run.stage, run.start_step, run.total_steps, epoch_units=run.steps_per_epoch)
    run.t_start = run.t_log = time.perf_counter()


def compile_train_step(
    train_step: Any, inputs: inputs_lib.TrainInputs, state: TrainState, teacher_variables: Any, mesh: Mesh
) -> Any:
    """The train step with its on-device batch (:func:`snnjax.train.steps.with_inputs`), compiled for
    ``state`` and ``inputs.arg_shapes``: ``step(state, images, labels, teacher_variables) -> (state,
    metrics)``, both outputs replicated on ``mesh``, the input state donated (updated in place)."""
    repl = mesh_lib.replicated(mesh)
    jitted = jax.jit(steps.with_inputs(train_step, inputs.batch_fn), out_shardings=(repl, repl), donate_argnums=0)
    return jitted.lower(state, *inputs.arg_shapes, teacher_variables).compile()


def evaluate(run: StageRun, variables: Any) -> dict[str, float]:
    """Test accuracy and loss over the whole test split (sums reduced over every device of every process)."""
    bar = _progress(run.config, f"{run.stage} evaluating", 0, run.evaluator.num_batches, unit="batch", transient=True)
    try:  # its own bar: a test pass can take a minute, while the step bar stands still
        means = run.evaluator(variables, on_batch=None if bar.disable else lambda: bar.update(1))
    finally:
        bar.close()
    return {"test_accuracy": means["correct"], "test_loss": means["loss_sum"]}


def flush_train_log(run: StageRun) -> None:
    """Fetch the metrics of the steps since the last flush, stop on a non-finite loss, log their means."""
    if not run.pending:
        return
    config = run.config
    host = jax.device_get([m for _, m in run.pending])
    elapsed = time.perf_counter() - run.t_log
    n = len(run.pending)
    bad = [s for (s, _), m in zip(run.pending, host) if float(m["finite"]) < 1.0]
    if bad and config.train.nonfinite == "stop":
        run.ckpt.wait()
        last = run.ckpt.directory / str(run.last_saved) if run.last_saved is not None else "none"
        raise NonFiniteLossError(
            f"[{run.stage}] non-finite loss or gradient at step {bad[0]} (epoch {bad[0] // run.steps_per_epoch}). "
            f"Last good checkpoint: {last}. Fixes: lower config.optim.lr, use config.model.dtype=float32, or set "
            "config.train.nonfinite=skip to skip such updates."
        )
    run.epoch_records.extend({k: float(v) for k, v in m.items()} for m in host)
    run.train_time += elapsed
    run.images_seen += n * run.batch_size
    # Every scalar a step returns is logged (custom steps add their own, e.g. SNN2ANN's).
    means = {k: _mean(run.epoch_records[-n:], k) for k in run.epoch_records[-1] if k != "finite"}
    run.writer.write(
        "train",
        run.step,
        epoch=run.step / run.steps_per_epoch,
        **means,
        lr=float(run.schedule(run.step - 1)),
        skipped_steps=len(bad),
        images_per_s=n * run.batch_size / max(elapsed, 1e-9),
    )
    run.pending = []
    run.t_log = time.perf_counter()


def totals(run: StageRun) -> dict[str, float]:
    """:data:`TOTALS` so far: the earlier processes' (from the checkpoint resumed) plus this one's.

    ``wall_time_s`` of this process counts from the start of compilation; an earlier process counts up
    to its last checkpoint (work after it was lost and is done again).
    """
    now = {
        "train_time_s": run.train_time,
        "images_seen": run.images_seen,
        "wall_time_s": time.perf_counter() - run.t_start + run.compile_s,
    }
    return {k: run.before[k] + now[k] for k in TOTALS}


def checkpoint(run: StageRun, metrics: dict[str, float] | None = None) -> None:
    """Save the state at the current step (every process takes part; orbax writes it once)."""
    meta = {**run.meta, **totals(run)}
    run.ckpt.save(run.step, run.state, meta=meta, config=run.config.to_dict(), metrics=metrics)
    run.last_saved = run.step


def train_epoch(run: StageRun) -> None:
    """Train from the current step to the end of its epoch (or of the stage).

    Logs every ``train.log_every_steps``, checkpoints every ``train.checkpoint_every_steps`` within
    the epoch, and exits with status 3 after ``train.stop_after_steps`` steps of this process.
    """
    config = run.config
    log_every = int(config.train.log_every_steps)
    ckpt_every = int(config.train.checkpoint_every_steps)
    stop_after = int(config.train.stop_after_steps)
    while run.step < run.total_steps:
        if stop_after and run.step - run.start_step >= stop_after:
            flush_train_log(run)
            run.ckpt.wait()
            distributed.say(f"[{run.stage}] stopping after {stop_after} steps as configured (train.stop_after_steps)")
            sys.exit(3)
        run.state, metrics = run.step_fn(run.state, *next(run.inputs.batches), run.teacher_variables)
        run.pending.append((run.step, metrics))
        run.step += 1
        run.progress.update(1)
        epoch_end = run.step % run.steps_per_epoch == 0
        if run.step % log_every == 0 or epoch_end:
            flush_train_log(run)
        if epoch_end:
            return
        if ckpt_every and run.step % ckpt_every == 0:
            flush_train_log(run)
            checkpoint(run)
    flush_train_log(run)


def end_epoch(run: StageRun) -> dict[str, Any]:
    """At an epoch boundary: evaluate (every ``train.eval_every_epochs`` and at the end), log the
    epoch record, track the best accuracy and checkpoint. Returns the record."""
    config, step = run.config, run.step
    epoch = step // run.steps_per_epoch
    record = {
        "epoch": epoch,
        "train_loss": _mean(run.epoch_records, "loss"),
        "train_accuracy": _mean(run.epoch_records, "accuracy"),
        "lr": float(run.schedule(step - 1)),
    }
    run.epoch_records = []
    metrics_for_ckpt = None
    if epoch % int(config.train.eval_every_epochs) == 0 or step == run.total_steps:
        run.last_eval = evaluate(run, run.state.variables)
        record.update(run.last_eval)
        if run.epoch_metrics is not None:
            record.update(run.epoch_metrics(run.state.variables))
        metrics_for_ckpt = {"test_accuracy": run.last_eval["test_accuracy"]}
        if run.last_eval["test_accuracy"] > run.meta["best_test_accuracy"]:
            run.meta.update(best_test_accuracy=run.last_eval["test_accuracy"], best_epoch=epoch, best_step=step)
        history = run.meta["test_history"] = [*run.meta.get("test_history", []), run.last_eval["test_accuracy"]]
        reason = early_stop_reason(config.train, history)
        if reason is not None and step < run.total_steps:
            # Saved in this epoch's checkpoint meta, so a re-run finds the stage complete (stage_complete).
            run.meta.update(stopped_epoch=epoch, stopped_because=reason)
            distributed.say(
                f"[{run.stage}] test accuracy {run.last_eval['test_accuracy']:.4f} after epoch {epoch}: the stage "
                f"ends here ({'train.stop_at_accuracy' if reason == 'accuracy' else 'train.stop_on_plateau_*'})"
            )
    run.meta["epoch"] = epoch
    record["best_test_accuracy"] = run.meta["best_test_accuracy"]
    # Training seconds of this epoch's steps only (no compilation, evaluation or checkpointing; after a
    # resume mid-epoch, the steps this process ran).
    record["epoch_train_seconds"] = run.train_time - run.train_time_at_epoch_start
    run.writer.write("epoch", step, **record)
    run.progress.set_postfix_str(_postfix(record))
    checkpoint(run, metrics_for_ckpt)
    run.train_time_at_epoch_start = run.train_time
    run.t_log = time.perf_counter()  # the evaluation and checkpoint above are not training time
    return record


def close(run: StageRun) -> None:
    """Wait for pending checkpoint writes; close the progress bar and the logs (also after an error)."""
    if run.progress is not None:
        run.progress.close()
    if run.inputs is not None:
        run.inputs.close()  # stops the streamed reader's worker threads/processes
    run.ckpt.wait()
    if run.writer is not None:
        run.writer.close()


def _early_stop_record(config: ml_collections.ConfigDict, meta: dict[str, Any]) -> dict[str, Any]:
    """The early-stop settings in use and the epoch each one stopped the stage at (None: it did not)."""
    t, out = config.train, {}
    epoch = int(meta.get("stopped_epoch", -1))
    if float(t.get("stop_at_accuracy", 0.0)) > 0.0:
        hit = epoch if epoch >= 0 and meta.get("stopped_because") == "accuracy" else None
        out["stop_at_accuracy"] = {"target": float(t.stop_at_accuracy), "reached_epoch": hit}
    if int(t.get("stop_on_plateau_epochs", 0)) > 0:
        hit = epoch if epoch >= 0 and meta.get("stopped_because") == "plateau" else None
        out["stop_on_plateau"] = {
            "epochs": int(t.stop_on_plateau_epochs),
            "min_gain": float(t.stop_on_plateau_gain),
            "stopped_epoch": hit,
        }
    return out


def finish(run: StageRun) -> StageResult:
    """The stage summary (evaluating the restored state when the stage was already complete)."""
    if not run.last_eval:
        run.last_eval = evaluate(run, run.state.variables)
    config, meta, total = run.config, run.meta, totals(run)
    summary = {
        "stage": run.stage,
        "dataset": run.splits.name,
        "model": config.model.name,
        "neuron": config.model.neuron,
        "time_steps": int(config.model.time_steps),
        "loss": str(config.train.get("loss", "ce")),  # the training loss (ce | tet); KD is in the pipeline's `kd`
        "num_params": count_params(run.state.params),
        "epochs": int(config.train.epochs),
        # train.stop_at_accuracy / stop_on_plateau_*: the setting and the epoch it stopped at (None: all epochs ran).
        **_early_stop_record(config, meta),
        "steps": int(run.state.step),
        "best_test_accuracy": float(meta["best_test_accuracy"]),
        "best_epoch": int(meta["best_epoch"]),
        "final_test_accuracy": float(run.last_eval["test_accuracy"]),
        "final_test_loss": float(run.last_eval["test_loss"]),
        "compile_time_s": run.compile_s,
        "train_time_s": total["train_time_s"],
        "train_images_per_s": total["images_seen"] / total["train_time_s"] if total["train_time_s"] else None,
        "wall_time_s": total["wall_time_s"],
        "resumed_from_step": run.resumed_from,
        "devices": run.n_devices,
        "processes": jax.process_count(),
        "train_step_memory": compiled_memory(run.step_fn),
        "peak_rss_bytes": peak_rss_bytes(),
    }
    return StageResult(summary=summary, state=run.state, model=run.model)


def compiled_memory(step_fn: Any) -> dict[str, int] | None:
    """XLA's memory analysis of the compiled train step, in bytes (None when the step is not a compiled
    executable or the backend does not report it): ``temp`` (activations, workspace), ``argument``
    (state and batch), ``output``, and ``total`` = temp + argument (the peak a step needs beyond code)."""
    try:
        mem = step_fn.memory_analysis()
    except Exception:  # noqa: BLE001 (a jitted, not yet compiled step, or a backend without the analysis)
        return None
    if mem is None:
        return None
    temp, argument = int(mem.temp_size_in_bytes), int(mem.argument_size_in_bytes)
    return {"temp": temp, "argument": argument, "output": int(mem.output_size_in_bytes), "total": temp + argument}


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far, in bytes (Linux reports ``ru_maxrss`` in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


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
    mesh: Mesh,
    epoch_metrics: Any = None,
) -> StageResult:
    """Train ``config.model`` on ``config.data`` and evaluate it every epoch.

    Args:
      config: a run config (:func:`snnjax.config.base_config` schema).
      workdir: run directory; checkpoints go to ``workdir/checkpoints/<stage>``, records to
        ``workdir/metrics.jsonl``, TensorBoard to ``workdir/tensorboard/<stage>`` (logs from
        process 0 only in a multi-process run; checkpoints from every process).
      stage: name of this stage in logs and checkpoints.
      model: the model to train (default: built from ``config.model``).
      splits: the dataset (default: loaded from ``config.data``).
      initial_variables: start from these variables (e.g. transplanted) instead of a fresh init;
        ignored when resuming from a checkpoint.
      teacher: distil from this teacher (``config.kd`` gives temperature and alpha).
      make_step: ``(model, tx, *, distillation, nonfinite) -> train_step`` (default
        :func:`snnjax.train.steps.make_train_step`); pipelines with their own objective pass theirs.
        With ``config.train.loss`` other than ``"ce"`` it is also given ``objective=``
        (:func:`snnjax.train.steps.objective_from_config`).
      trainable: a params-shaped tree of bools; False leaves are frozen (:func:`optim.freeze`).
      initial_opt_state: ``fresh_opt_state -> opt_state`` applied to a fresh (not resumed) state,
        e.g. to load momentum buffers from an earlier stage.
      mesh: the run's device mesh, built once by the caller (``launch.py``); every array of the stage
        is placed on it.
      epoch_metrics: ``variables -> {name: float}``, called after every test evaluation; its values
        join the epoch record in ``metrics.jsonl`` (e.g. the hybrid pipeline's spikes per image).

    Returns:
      the stage summary, the final state and the model.
    """
    run = set_up(
        config,
        workdir,
        stage=stage,
        model=model,
        splits=splits,
        initial_variables=initial_variables,
        teacher=teacher,
        make_step=make_step,
        trainable=trainable,
        initial_opt_state=initial_opt_state,
        mesh=mesh,
    )
    run.epoch_metrics = epoch_metrics
    resume(run)
    try:
        start(run)
        while not stage_complete(run.step, run.total_steps, run.meta):
            train_epoch(run)
            if run.step % run.steps_per_epoch == 0:
                end_epoch(run)
    finally:
        close(run)
    return finish(run)


def _progress(
    config: ml_collections.ConfigDict,
    stage: str,
    start: int,
    total: int,
    *,
    unit: str = "step",
    transient: bool = False,
    epoch_units: int | None = None,
) -> Any:
    """Progress of ``stage`` on stderr (process 0, ``train.progress_bar``): a tqdm bar on a terminal,
    plain lines in a log file (:mod:`snnjax.progress`)."""
    return progress_lib.progress(
        stage,
        total,
        initial=start,
        unit=unit,
        epoch_units=epoch_units,
        transient=transient,
        enabled=bool(config.train.progress_bar) and distributed.is_primary(),
    )


def _postfix(record: dict[str, float]) -> str:
    parts = [f"loss {record['train_loss']:.3f}", f"train {record['train_accuracy']:.3f}"]
    if "test_accuracy" in record:
        parts.append(f"test {record['test_accuracy']:.3f}")
    return ", ".join(parts)
