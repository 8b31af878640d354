"""The train state: a plain pytree that checkpoints, shards and donates as one object."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue exactly where it stopped.

    Attributes:
      step: global optimisation step, int32 scalar (epoch = step // steps_per_epoch).
      params: model parameters (float32).
      model_state: every other variable collection the model updates in training, e.g.
        ``{"batch_stats": ...}`` (BatchNorm running statistics) or SNN2ANN's adaptive thresholds;
        ``{}`` for stateless models.
      opt_state: optimizer state.
      rng: the run's base PRNG key (raw uint32 [2] data); per-step keys are ``fold_in(rng, step)``,
        so the random stream after a resume equals the uninterrupted one.
    """

    step: jax.Array
    params: Any
    model_state: dict[str, Any]
    opt_state: Any
    rng: jax.Array

    @property
    def variables(self) -> dict[str, Any]:
        """``{"params": ..., **model_state}`` as ``model.apply`` expects."""
        return {"params": self.params, **self.model_state}


def create_train_state(variables: dict[str, Any], tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
    """A step-0 state from initial model ``variables`` (``params`` plus mutable collections)."""
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state={k: v for k, v in variables.items() if k != "params"},
        opt_state=tx.init(params),
        rng=jax.random.key_data(rng) if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng,
    )


def step_key(state: TrainState, stream: int) -> jax.Array:
    """A PRNG key unique to ``(state.step, stream)`` (streams: 0 augmentation, 1 model noise, ...)."""
    key = jax.random.wrap_key_data(state.rng)
    return jax.random.fold_in(jax.random.fold_in(key, state.step), stream)
