"""IDSNN (Fan et al., Biomimetics 2023): initialisation from a larger ANN + distillation.

Stages, each checkpointed so that a re-run skips what is finished:

1. teacher: train the ANN teacher (ResNet34) or restore it from ``config.teacher.checkpoint``; a
   PyTorch file there is evaluated on the run's test split first (:func:`imported_teacher`), so that
   its accuracy is in ``teacher_summary.json``, the log and ``summary.json`` as a trained teacher's is;
2. transplant: map the teacher's weights (or, with ``config.transplant.checkpoint``, another finished
   ANN run's, as the official code's separate pycls checkpoint) into the Spiking ResNet18 (block-index
   mapping and channel loop-interpolation, :mod:`snnjax.methods.idsnn.transplant`), report written to
   ``transplant_report.txt``;
3. student: train the SNN with surrogate gradients and Hinton KD from the frozen teacher.

``config.transplant.enabled`` and ``config.kd.enabled`` are the paper's two ablation switches
(baseline = both off, init-only, KD-only, IDSNN = both on).
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections

from snnjax import data as data_lib
from snnjax import models, workdir_layout
from snnjax.analysis.workdir import stage_spike_summary
from snnjax.interop import source as torch_source
from snnjax.methods.idsnn import config as idsnn_config
from snnjax.methods.idsnn import transplant
from snnjax.train import distributed, loop, setup, stages
from snnjax.train import evaluate as evaluate_lib
from snnjax.train.run_outputs import finish_run, write_json, write_text


def imported_teacher(
    loaded: torch_source.TorchANN,
    model: Any,
    splits: data_lib.DatasetSplits,
    config: ml_collections.ConfigDict,
    workdir: str,
    mesh: Any,
) -> stages.StageOutput:
    """The teacher stage of a PyTorch file: its variables and summary, with its test accuracy.

    A teacher trained here reports its test accuracy from the training loop; an imported one was never
    tested on this data, and a file trained on other data (or another normalisation) loads without an
    error yet teaches noise. So it is evaluated once on the run's test split, by the evaluator the
    training loop's test pass uses, and the result goes where a trained teacher's goes:
    ``workdir/teacher_summary.json``, a log line, and (through the pipeline) ``summary.json``.
    """
    metrics = evaluate_lib.evaluate(
        model, loaded.variables, splits, batch_size=int(config.data.eval_batch_size), mesh=mesh
    )
    chance = 1.0 / splits.num_classes
    summary = {
        **loaded.summary,
        "test_accuracy": float(metrics["correct"]),
        "test_loss": float(metrics["loss_sum"]),
        "chance_accuracy": chance,
    }
    write_json(workdir_layout.stage_summary(workdir, "teacher"), summary)
    distributed.say(
        f"[teacher] {loaded.summary['restored_from']}: test accuracy {summary['test_accuracy']:.4f} on "
        f"{splits.name} (chance {chance:.4f}); see {workdir_layout.stage_summary(workdir, 'teacher')}"
    )
    return stages.StageOutput(loaded.variables, summary)


def transplant_source(config: ml_collections.ConfigDict, workdir: str, splits, mesh: Any) -> tuple[Any, dict[str, Any]]:
    """Variables of ``config.transplant.checkpoint``'s ANN, rebuilt from the config stored with it
    (any depth or width: e.g. a same-depth ResNet18 while KD uses the ResNet34), and what it was."""
    loaded = torch_source.load(config.transplant, "transplant", None, splits, workdir, "transplant_source")
    if loaded is not None:  # a PyTorch file (snnjax.interop)
        return loaded.variables, {**loaded.summary, "checkpoint": loaded.summary["restored_from"]}
    restore = idsnn_config.transplant_source_restore(config)
    scfg = stages.stored_config(restore)
    if scfg.model.neuron != "relu":
        raise ValueError(
            f"config.transplant.checkpoint={restore.checkpoint!r} holds a {scfg.model.name} with "
            f"neuron={scfg.model.neuron!r}; the transplant source must be an ANN (neuron='relu')."
        )
    source = stages.run_stage(
        scfg,
        workdir,
        "transplant_source",
        model=models.build(scfg.model, splits.num_classes),
        splits=splits,
        restore=restore,
        mesh=mesh,
    )
    return source.variables, {
        "checkpoint": restore.checkpoint,
        "model": scfg.model.name,
        "width": int(scfg.model.width),
    }


def run(config: ml_collections.ConfigDict, workdir: str, *, mesh: Any) -> dict[str, Any]:
    """Run the pipeline of ``config`` in ``workdir``; ``mesh``: the run's mesh (built once by ``launch.py``)."""
    splits = data_lib.load_from_config(config.data)
    student = models.build(config.model, splits.num_classes)
    teacher_model = teacher = loaded = None
    separate_source = bool(config.transplant.enabled) and bool(config.transplant.get("checkpoint", ""))
    if (config.transplant.enabled and not separate_source) or config.kd.enabled:
        tcfg = idsnn_config.teacher_config(config)
        loaded = torch_source.load(config.teacher, "teacher", tcfg.model, splits, workdir, "teacher")
        if loaded is not None:  # a PyTorch file (snnjax.interop): the network is the checkpoint's
            tcfg.model = loaded.model
        teacher_model = models.build(tcfg.model, splits.num_classes)
        if loaded is not None:
            teacher = imported_teacher(loaded, teacher_model, splits, tcfg, workdir, mesh)
        else:
            teacher = stages.run_stage(
                tcfg,
                workdir,
                "teacher",
                model=teacher_model,
                splits=splits,
                restore=idsnn_config.teacher_restore(config),
                mesh=mesh,
            )

    initial, report_counts = None, {}
    if config.transplant.enabled:
        source_model = loaded.model if loaded else config.teacher.model
        source_vars, source_info = (teacher.variables if teacher else None), {"model": source_model.name}
        if separate_source:
            source_vars, source_info = transplant_source(config, workdir, splits, mesh)
        fresh = setup.init_variables(student, splits.image_shape, int(config.seed), mesh)
        initial, report = transplant.transplant(
            jax.device_get(source_vars),
            jax.device_get(fresh),
            block_rule=config.transplant.block_rule,
            include_stem=bool(config.transplant.include_stem),
            include_shortcut=bool(config.transplant.include_shortcut),
            include_head=bool(config.transplant.include_head),
        )
        write_text(workdir_layout.transplant_report(workdir), report.to_text() + "\n")
        report_counts = {"transplanted": report.transplanted, "kept": report.kept, "source": source_info}
        distributed.say(
            f"[transplant] {report.transplanted} tensors from the teacher, {report.kept} kept; "
            f"see {workdir_layout.transplant_report(workdir)}"
        )

    kd_teacher = loop.Teacher(teacher_model, teacher.variables) if config.kd.enabled else None
    result = loop.train_and_evaluate(
        config,
        workdir,
        stage="student",
        model=student,
        splits=splits,
        initial_variables=initial,
        teacher=kd_teacher,
        mesh=mesh,
    )
    summary = dict(result.summary)
    summary.update(
        pipeline="idsnn",
        init=bool(config.transplant.enabled),
        kd=bool(config.kd.enabled),
        teacher=teacher.summary if teacher else {},
        transplant=report_counts,
        spikes=stage_spike_summary(result, splits),
    )
    return finish_run(workdir, summary)
