"""Training engine: state, optimizers, sharded steps, checkpoints, logging and the loop."""

from snnjax.train.checkpoint import Checkpointer, CheckpointError
from snnjax.train.loop import NonFiniteLossError, StageResult, Teacher, train_and_evaluate
from snnjax.train.state import TrainState, create_train_state
from snnjax.train.steps import Distillation, make_eval_step, make_train_step

__all__ = [
    "Checkpointer",
    "CheckpointError",
    "Distillation",
    "NonFiniteLossError",
    "StageResult",
    "Teacher",
    "TrainState",
    "create_train_state",
    "make_eval_step",
    "make_train_step",
    "train_and_evaluate",
]
