"""Orbax checkpoints of the train state, its bookkeeping and the run config.

One ``CheckpointManager`` per training stage, directory ``<stage dir>/checkpoints/<step>/`` with
three items: ``state`` (the :class:`~snnjax.train.state.TrainState`, ``StandardSave``), ``meta``
(JSON: epoch, best accuracy so far and its step, ...), ``config`` (JSON). It keeps the last ``keep``
checkpoints *and* the best one by test accuracy. Saves are asynchronous and atomic: orbax writes
into a temporary directory and renames it when complete, so a crash mid-save leaves the previous
checkpoint as the latest one.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath

BEST_METRIC = "test_accuracy"


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
                f"cannot restore the checkpoint at {path}: {type(err).__name__}: {err}\n"
                "It is corrupt, truncated, or was written by a different model/optimizer config. "
                f"Fix: start a fresh run in another --workdir, or delete {path} to fall back to an "
                "earlier checkpoint."
            ) from err
        _check_same_structure(abstract_state, restored["state"], path)
        return restored["state"], dict(restored["meta"])

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


def _check_same_structure(expected: Any, restored: Any, path: epath.Path) -> None:
    exp = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    got = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(restored)}
    if exp != got:
        missing = sorted(set(exp) - set(got))[:5]
        extra = sorted(set(got) - set(exp))[:5]
        shapes = [f"{k}: checkpoint {got[k]} vs model {exp[k]}" for k in exp if k in got and exp[k] != got[k]][:5]
        raise CheckpointError(
            f"checkpoint {path} does not fit the current model: missing {missing}, "
            f"unexpected {extra}, shape mismatches {shapes}. Fix: use the config it was "
            "trained with, or a fresh --workdir."
        )


def abstract_like(tree: Any) -> Any:
    """``ShapeDtypeStruct`` tree (with shardings) of ``tree`` for restoring onto the current mesh."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)
