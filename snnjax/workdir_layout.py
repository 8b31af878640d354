"""Where every file of a run lives in its ``--workdir``: the one place that spells those paths.

::

    WORKDIR/
      checkpoints/<stage>/<step>/    orbax checkpoints of each training stage    (train.checkpoint)
      <stage>_summary.json           a finished stage of a multi-stage pipeline  (train.stages)
      summary.json                   the run's result, written at its end        (train.run_outputs)
      curves.png                     loss / accuracy curves of every stage       (train.run_outputs)
      metrics.jsonl                  one JSON record a line, every stage         (train.metric_writer)
      tensorboard/<stage>/           TensorBoard scalars (train.tensorboard)     (train.metric_writer)
      run_config.json                the config of a run that finished           (train.finished)
      snnjax.log                     tracebacks of the errors that stopped it    (user_errors)
      .snnjax.lock                   held by the run that uses the workdir       (train.workdir_lock)
      conversion.json                hybrid: thresholds, converted accuracies    (methods.hybrid)
      transfer_report.txt            pretrain: what the ANN gave the SNN         (methods.pretrain)
      transplant_report.txt          IDSNN: what the teacher gave the student    (methods.idsnn)
      <stage>_torch_report.txt       a PyTorch source's conversion report        (interop.source)
      analysis.json                  ``python -m snnjax.analysis`` (its --out_dir, default the workdir)

Every writer and every reader (engine, methods, analysis, export, interop, the launcher, benchmarks)
builds these paths with the functions below, so that the layout changes here or nowhere
(``tests/test_workdir_layout.py`` fails on a file name spelled elsewhere).

This module imports the standard library only and nothing of snnjax: it is a base-layer module, and
:mod:`snnjax.train.workdir_lock`, which a launcher loads from its file before JAX, loads it from its
file as well.
"""

from __future__ import annotations

import os

CHECKPOINTS_DIR = "checkpoints"
STAGE_SUMMARY_SUFFIX = "_summary.json"
SUMMARY_FILE = "summary.json"
CURVES_FILE = "curves.png"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
FINISHED_CONFIG_FILE = "run_config.json"
LOG_FILE = "snnjax.log"
LOCK_FILE = ".snnjax.lock"
CONVERSION_FILE = "conversion.json"
TRANSFER_REPORT_FILE = "transfer_report.txt"
TRANSPLANT_REPORT_FILE = "transplant_report.txt"
TORCH_REPORT_SUFFIX = "_torch_report.txt"
ANALYSIS_FILE = "analysis.json"


def checkpoints(workdir: str) -> str:
    """``WORKDIR/checkpoints``: one folder per training stage below it."""
    return os.path.join(workdir, CHECKPOINTS_DIR)


def stage_checkpoints(workdir: str, stage: str) -> str:
    """``WORKDIR/checkpoints/<stage>``: the orbax step folders (``<step>/``) of one stage, written by
    every process through :class:`snnjax.train.checkpoint.Checkpointer` (latest N and the best)."""
    return os.path.join(workdir, CHECKPOINTS_DIR, stage)


def stage_summary(workdir: str, stage: str) -> str:
    """``WORKDIR/<stage>_summary.json``: the summary of a finished stage of a multi-stage pipeline
    (:func:`snnjax.train.stages.run_stage`; IDSNN's restored teacher); a relaunch skips the stage."""
    return os.path.join(workdir, f"{stage}{STAGE_SUMMARY_SUFFIX}")


def summary(workdir: str) -> str:
    """``WORKDIR/summary.json``: the run's result (best test accuracy, timings, environment), written
    by process 0 when the pipeline ends (:func:`snnjax.train.run_outputs.finish_run`)."""
    return os.path.join(workdir, SUMMARY_FILE)


def curves(workdir: str) -> str:
    """``WORKDIR/curves.png``: the curves of every stage, drawn from ``metrics.jsonl`` at the end."""
    return os.path.join(workdir, CURVES_FILE)


def metrics(workdir: str) -> str:
    """``WORKDIR/metrics.jsonl``: one JSON record a line (``stage``, ``kind``, ``step``, values) that
    every stage appends to (:class:`snnjax.train.metric_writer.MetricWriter`, process 0)."""
    return os.path.join(workdir, METRICS_FILE)


def tensorboard(workdir: str, stage: str) -> str:
    """``WORKDIR/tensorboard/<stage>``: TensorBoard event files of one stage (``train.tensorboard``)."""
    return os.path.join(workdir, TENSORBOARD_DIR, stage)


def finished_config(workdir: str) -> str:
    """``WORKDIR/run_config.json``: the config of a run that ran to its end; the same command again
    prints its summary instead of training (:mod:`snnjax.train.finished`)."""
    return os.path.join(workdir, FINISHED_CONFIG_FILE)


def log(workdir: str) -> str:
    """``WORKDIR/snnjax.log``: the full traceback of every error that stopped a run, appended by
    :func:`snnjax.user_errors.report` (the launcher, the IDSNN ablation command)."""
    return os.path.join(workdir, LOG_FILE)


def lock(workdir: str) -> str:
    """``WORKDIR/.snnjax.lock``: JSON of the run that holds the workdir (:mod:`snnjax.train.workdir_lock`)."""
    return os.path.join(workdir, LOCK_FILE)


def conversion(workdir: str) -> str:
    """``WORKDIR/conversion.json``: the hybrid pipeline's balanced thresholds and converted-SNN
    accuracies (cached: a relaunch does not convert again)."""
    return os.path.join(workdir, CONVERSION_FILE)


def transfer_report(workdir: str) -> str:
    """``WORKDIR/transfer_report.txt``: which ANN weights the pretrain pipeline copied into the SNN."""
    return os.path.join(workdir, TRANSFER_REPORT_FILE)


def transplant_report(workdir: str) -> str:
    """``WORKDIR/transplant_report.txt``: which teacher weights IDSNN copied into the student."""
    return os.path.join(workdir, TRANSPLANT_REPORT_FILE)


def torch_report(workdir: str, stage: str) -> str:
    """``WORKDIR/<stage>_torch_report.txt``: how a PyTorch checkpoint given as a stage's source was
    read (:mod:`snnjax.interop.source`)."""
    return os.path.join(workdir, f"{stage}{TORCH_REPORT_SUFFIX}")


def analysis(out_dir: str) -> str:
    """``OUT_DIR/analysis.json``: ``python -m snnjax.analysis``'s measurements (``--out_dir``,
    default the workdir), next to its PNGs."""
    return os.path.join(out_dir, ANALYSIS_FILE)
