"""Orbax checkpoints of the train state, its bookkeeping and the run config.

One ``CheckpointManager`` per training stage, directory ``<stage dir>/checkpoints/<step>/`` with
three items: ``state`` (the :class:`~snnjax.train.state.TrainState`, ``StandardSave``), ``meta``
(JSON: epoch, best accuracy so far and its step, ...), ``config`` (JSON). It keeps the last ``keep``
checkpoints *and* the best one by test accuracy. Saves are asynchronous and atomic: orbax writes
into a temporary directory and renames it when complete, so a crash mid-save leaves the previous
checkpoint as the latest one.

At resume (:meth:`Checkpointer.restore_newest`), a latest checkpoint that does not restore while an
earlier one does is moved aside to ``<step>.corrupt`` (never deleted) and the run continues from the
earlier one, with one warning line on stderr naming the step, where it was moved, a short reason and
the step resumed from. Temporary folders left by a crash mid-save are removed at start
(:func:`remove_stale_tmp`, called by the launcher while it holds the workdir's lock).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath

from snnjax import workdir_layout

BEST_METRIC = "test_accuracy"
TMP_MARKER = ".orbax-checkpoint-tmp"  # orbax's suffix of a step directory still being written
CORRUPT_SUFFIX = ".corrupt"
REASON_MAX_CHARS = 200  # a warning line stays readable; the full error goes to the exception chain
# Noise that orbax/TensorStore put into error messages: the JSON spec of the store and the repr of a
# bound method (orbax formats ``t.spec`` without calling it), both many lines long.
_NOISE = re.compile(r"\s*(\[tensorstore_spec|See full TensorStore details|<bound method)")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be restored onto the current model."""


def _best_metric(metrics: dict[str, float]) -> float:
    return metrics[BEST_METRIC]


class Checkpointer:
    """Save/restore the train state of one stage.

    Args:
      directory: where step directories go (created).
      keep: how many of the latest checkpoints to keep (the best one is kept as well).
      async_save: write in a background thread (the step loop goes on).
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, async_save: bool = True):
        if keep < 1:
            raise ValueError(f"config.train.keep_checkpoints must be >= 1, got {keep}")
        self.directory = epath.Path(directory).absolute()
        policy = ocp.checkpoint_managers.AnyPreservationPolicy(
            [
                ocp.checkpoint_managers.LatestN(keep),
                ocp.checkpoint_managers.BestN(
                    get_metric_fn=_best_metric, reverse=False, n=1, keep_checkpoints_without_metrics=False
                ),
            ]
        )
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy, create=True, enable_async_checkpointing=async_save, cleanup_tmp_directories=True
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta", "config"))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(
        self,
        step: int,
        state: Any,
        *,
        meta: dict[str, Any],
        config: dict[str, Any],
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Start saving ``state`` at ``step`` (returns before the write finishes when async)."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta), config=ocp.args.JsonSave(config)
            ),
            metrics=metrics,
            force=True,
        )

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        """Restore ``(state, meta)`` at ``step`` onto the shardings/shapes of ``abstract_state``.

        Raises :class:`CheckpointError` naming the directory and the mismatch when the checkpoint
        is truncated, corrupt, or from another model.
        """
        path = self.directory / str(step)
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()),
            )
        except Exception as err:  # orbax raises many types; the user needs the path and the cause
            raise CheckpointError(
                f"cannot restore the checkpoint at {path} ({failure_reason(err, path)}): it is "
                "corrupt, truncated, or was written by a different model/optimizer config. Fix: start a fresh run "
                f"in another --workdir, or move {path} away to fall back to an earlier checkpoint."
            ) from err
        _check_same_structure(abstract_state, restored["state"], path)
        return restored["state"], dict(restored["meta"])

    def restore_newest(self, abstract_state: Any, *, move_aside: bool = True) -> tuple[int, Any, dict[str, Any]] | None:
        """``(step, state, meta)`` of the newest checkpoint that restores, or None when there is none.

        When the latest fails and an earlier one restores, the config fits (the earlier one proves it)
        and the newer ones are damaged: each is renamed ``<step>.corrupt`` (``move_aside``; never
        deleted) with one warning line on stderr. When none restores, the latest's
        :class:`CheckpointError` is raised and nothing is moved (the checkpoints may be of another
        config). A checkpoint of another model structure is refused at once, never moved.
        """
        steps = sorted(self.all_steps(), reverse=True)
        failed: list[tuple[int, CheckpointError]] = []
        for step in steps:
            try:
                state, meta = self.restore(step, abstract_state)
            except CheckpointError as err:
                if isinstance(err, StructureMismatchError):
                    raise
                failed.append((step, err))
                continue
            if failed and move_aside and jax.process_index() == 0:
                moved = [move_aside_corrupt(self.directory / str(bad)) for bad, _ in failed]
                print(fallback_warning(failed, moved, step, self.directory), file=sys.stderr, flush=True)
            if failed:
                self._manager.reload()
            return step, state, meta
        if failed:
            raise failed[0][1]
        return None

    def read_config(self, step: int) -> dict[str, Any] | None:
        try:
            return dict(self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"])
        except Exception:
            return None

    def wait(self) -> None:
        """Block until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


class StructureMismatchError(CheckpointError):
    """A checkpoint that restores but does not fit the current model (another config)."""


def _root_cause(err: BaseException) -> BaseException:
    """The innermost exception of ``err``'s chain: orbax wraps the specific error (a TensorStore
    read failure, a JSON decode error) in generic ones whose messages say little."""
    seen = {id(err)}
    while True:
        nxt = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
        if nxt is None or id(nxt) in seen:
            return err
        seen.add(id(nxt))
        err = nxt


def failure_reason(err: BaseException, step_dir: epath.Path | str | None = None) -> str:
    """Why a checkpoint did not restore, as one short clean line: ``<ErrorType>: <first line>``.

    Takes the root cause of ``err``, drops TensorStore's JSON specs and bound-method reprs, writes
    paths inside ``step_dir`` relative to it (the caller names the folder), collapses whitespace
    and truncates to :data:`REASON_MAX_CHARS` at a word boundary.
    """
    root = _root_cause(err)
    text = _NOISE.split(str(root), maxsplit=1)[0]
    if step_dir is not None:
        text = text.replace(str(step_dir).rstrip("/") + "/", "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = " ".join(lines[0].split()) if lines else ""
    reason = f"{type(root).__name__}: {message}".rstrip(" :.") if message else type(root).__name__
    if len(reason) > REASON_MAX_CHARS:
        cut = reason[: REASON_MAX_CHARS - 3]
        reason = (cut[: cut.rfind(" ")] if " " in cut[REASON_MAX_CHARS // 2 :] else cut) + "..."
    return reason


def fallback_warning(
    failed: list[tuple[int, BaseException]], moved: list[str], resumed_step: int, directory: epath.Path | str
) -> str:
    """The one warning line of a fallback: the step(s) that did not restore, the reason of the
    newest, where they were moved and the step resumed from."""
    steps = ", ".join(str(step) for step, _ in failed)
    newest, err = failed[0]
    label = f"step {steps}" if len(failed) == 1 else f"steps {steps}"
    reason = failure_reason(err, epath.Path(directory) / str(newest))
    prefix = "" if len(failed) == 1 else f"step {newest}: "
    return (
        f"warning: checkpoint {label} did not restore ({prefix}{reason}); moved to {', '.join(moved)}; "
        f"resuming from step {resumed_step}"
    )


def move_aside_corrupt(step_dir: epath.Path | str) -> str:
    """Rename a damaged step directory to ``<step>.corrupt`` (``<step>.corrupt-2``, ... if taken); its new path."""
    step_dir = str(step_dir)
    target, n = step_dir + CORRUPT_SUFFIX, 1
    while os.path.exists(target):
        n += 1
        target = f"{step_dir}{CORRUPT_SUFFIX}-{n}"
    os.rename(step_dir, target)
    return target


def remove_stale_tmp(workdir: str) -> list[str]:
    """Delete the temporary step folders (``*.orbax-checkpoint-tmp*``) under ``workdir/checkpoints/*/``.

    They are left by a process killed mid-save; orbax ignores them but they waste disk. Only safe
    while no process writes to ``workdir``, i.e. under its lock. Returns the removed paths.
    """
    root = workdir_layout.checkpoints(workdir)
    removed = []
    for stage in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        stage_dir = os.path.join(root, stage)
        for name in sorted(os.listdir(stage_dir)) if os.path.isdir(stage_dir) else []:
            if TMP_MARKER in name:
                path = os.path.join(stage_dir, name)
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _check_same_structure(expected: Any, restored: Any, path: epath.Path) -> None:
    exp = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    got = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(restored)}
    if exp != got:
        missing = sorted(set(exp) - set(got))[:5]
        extra = sorted(set(got) - set(exp))[:5]
        shapes = [f"{k}: checkpoint {got[k]} vs model {exp[k]}" for k in exp if k in got and exp[k] != got[k]][:5]
        raise StructureMismatchError(
            f"checkpoint {path} does not fit the current model: missing {missing}, "
            f"unexpected {extra}, shape mismatches {shapes}. Fix: use the config it was "
            "trained with, or a fresh --workdir."
        )


def abstract_like(tree: Any) -> Any:
    """``ShapeDtypeStruct`` tree (with shardings) of ``tree`` for restoring onto the current mesh."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)
