"""SLTT: Spatial Learning Through Time (Meng et al., ICCV 2023), a train step whose memory does not grow with T.

BPTT differentiates the whole unrolled network: its backward pass keeps every time step's
activations, so training memory grows linearly with ``T``. SLTT drops the temporal components of the
backward graph, the gradient through the membrane carry ``u[t-1] -> u[t]`` (and through the reset
``s[t-1]``), and keeps the spatial ones (layer to layer within a step). With per-step losses
``L = (1/T) sum_t CE(o[t], y)`` (the official code's), the weight gradient is then a sum over time
steps of per-step spatial gradients, each computable as soon as step ``t`` has run::

    dL/dW^l = sum_t  (dL_t/du^l[t]) (du^l[t]/dW^l),
    dL_t/du^l[t] = (dL_t/ds^l[t]) H'(u^l[t] - V_th)        (no  dL/du^l[t+1] du^l[t+1]/du^l[t] term)

:func:`make_train_step` runs ``lax.scan`` over ``t``: at each step it applies the model to that
step's input alone (the model cloned with ``time_steps=1``; each
:class:`~snnjax.layers.SpikingNeuron` starts from the membrane and spike of step ``t-1``, held in the
``"neuron_state"`` collection under ``stop_gradient``), takes ``value_and_grad`` of the step's loss
``CE(o[t], y) / T`` and adds it to the running gradient; one optimizer update follows
(:func:`snnjax.train.steps.apply_gradients`). Only one step's activations are alive at a time.

SLTT-K (``sltt_k = K`` in ``1..T-1``): per iteration ``K`` of the ``T`` steps, drawn at random
(``torch.randperm(T)[:K]`` in the official code), compute gradients; the others run forward only
(a ``lax.cond`` per step, so those cost a forward pass and nothing is differentiated). As in the
official code each chosen step's loss is still divided by ``T``.

What differs from snnjax's BPTT step (:func:`snnjax.train.steps.make_train_step`), following the
official code (github qymeng94/SLTT, ``train_SLTT.py``/``train_SLTTK.py``, ``modules/neuron.py``):

* the loss is the mean over steps of the per-step cross-entropy, not the cross-entropy of the
  time-averaged logits (the reported ``accuracy`` is of the time-averaged logits, as BPTT's);
* batch norm normalises each time step by its own batch statistics (over ``B``, not ``B*T``), and
  its running averages are updated once per time step (``T`` updates per iteration, as PyTorch's
  BN called at every step);
* with distillation, Hinton KD applies per step: ``(1/T) sum_t KD(o[t], teacher, y)`` (the teacher
  is an ANN, run once per batch); KD on the mean logits would need all steps' graphs again;
* the reported ``loss`` is ``(1/T) sum_t`` of the per-step loss over all ``T`` steps, also under
  SLTT-K (whose gradient covers only the ``K`` chosen steps).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from snnjax import layers, losses
from snnjax.models.resnet import ResNet
from snnjax.train import distributed, steps
from snnjax.train.state import TrainState, step_key

K_STREAM = 2  # fold_in of the model key that draws SLTT-K's steps


def choose_make_step(train: ml_collections.ConfigDict, model: nn.Module, make_step: Callable) -> Callable:
    """The ``make_step`` of a stage: ``make_step`` itself, or the SLTT step for ``train.through_time="sltt"``.

    THE place that reads ``train.through_time`` / ``train.sltt_k`` (:func:`snnjax.train.loop.set_up`).
    SLTT replaces only the default step (:func:`snnjax.train.steps.make_train_step`) of a spiking
    ResNet (:class:`~snnjax.layers.SpikingNeuron` activations: LIF, IF, PLIF); anything else is refused.
    """
    through_time = train.get("through_time", "bptt")
    if through_time == "bptt":
        return make_step
    if through_time != "sltt":
        raise ValueError(f"config.train.through_time={through_time!r} is not valid: choose one of ['bptt', 'sltt']")
    if make_step is not steps.make_train_step:
        raise ValueError(
            f"config.train.through_time='sltt' is not valid here: this stage trains with its own step "
            f"({getattr(make_step, '__qualname__', make_step)!r}); SLTT replaces only the default one"
        )
    activation = getattr(model, "activation", None)
    if not (
        isinstance(model, ResNet)
        and isinstance(getattr(activation, "func", activation), type)
        and issubclass(getattr(activation, "func", activation), layers.SpikingNeuron)
    ):
        raise ValueError(
            f"config.train.through_time='sltt' is not valid for this stage's model ({type(model).__name__}, "
            f"activation {getattr(activation, 'func', activation)!r}): SLTT needs a spiking ResNet (LIF/IF/PLIF)"
        )
    k = int(train.get("sltt_k", 0))
    distributed.say(
        f"[sltt] gradients through the spatial path only, one time step at a time "
        f"({f'K = {k} random steps' if 0 < k < model.time_steps else 'all steps'} of T = {model.time_steps})"
    )
    return functools.partial(make_train_step, sltt_k=k, unroll=True if train.get("sltt_unroll", False) else 1)


def step_model(model: nn.Module) -> nn.Module:
    """``model`` run for one time step: the same parameters, ``time_steps=1``."""
    if not hasattr(model, "time_steps"):
        raise TypeError(f"SLTT needs a model with a time_steps field, got {type(model).__name__}")
    return model.clone(time_steps=1)


def step_input(inputs: jax.Array, t: jax.Array) -> jax.Array:
    """Step ``t`` of a batch: the static image ``[B, H, W, C]`` itself (direct encoding), or the
    frame ``inputs[:, t:t+1]`` of ``[B, T, H, W, C]`` events (kept 5-D with one step)."""
    if inputs.ndim == 5:
        return jax.lax.dynamic_slice_in_dim(inputs, t, 1, axis=1)
    return inputs


def initial_neuron_state(one_step: nn.Module, variables: dict[str, Any], x: jax.Array) -> Any:
    """Zeros of every spiking layer's ``{"u", "s"}`` for a step of input ``x`` (``u[-1] = s[-1] = 0``)."""

    def shapes():
        _, new = one_step.apply(
            variables, x, train=False, mutable=[layers.NEURON_STATE], rngs=steps.model_rngs(jax.random.key(0))
        )
        return new[layers.NEURON_STATE]

    return jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(shapes))


def forward_steps(
    model: nn.Module, variables: dict[str, Any], inputs: jax.Array, *, train: bool, key: jax.Array | None = None
) -> tuple[jax.Array, dict[str, Any]]:
    """Per-step logits ``[B, T, K]`` of ``model`` run one step at a time, and the model state after.

    No gradient: the forward pass of the SLTT step (for tests and inspection). In inference mode
    (``train=False``) their mean over time equals ``model.apply(variables, inputs, train=False)``.
    """
    one_step = step_model(model)
    key = jax.random.key(0) if key is None else key
    model_state = {k: v for k, v in variables.items() if k != "params" and k not in steps.TRANSIENT_COLLECTIONS}
    state0 = initial_neuron_state(one_step, variables, step_input(inputs, jnp.int32(0)))
    mutable = [layers.NEURON_STATE, *model_state] if train else [layers.NEURON_STATE]

    def body(carry, t):
        model_state, neuron_state = carry
        logits, new = one_step.apply(
            {"params": variables["params"], **model_state, layers.NEURON_STATE: neuron_state},
            step_input(inputs, t),
            train=train,
            mutable=mutable,
            rngs=steps.model_rngs(jax.random.fold_in(key, t)),
        )
        model_state = {k: new.get(k, v) for k, v in model_state.items()}
        return (model_state, new[layers.NEURON_STATE]), logits

    (model_state, _), logits = jax.lax.scan(body, (model_state, state0), jnp.arange(model.time_steps))
    return jnp.moveaxis(logits, 0, 1), model_state


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    distillation: steps.Distillation | None = None,
    nonfinite: steps.NonFinite = "stop",
    sltt_k: int = 0,
    unroll: int | bool = 1,
) -> Callable[[TrainState, steps.Batch, Any], tuple[TrainState, steps.Metrics]]:
    """The SLTT train step, with the signature of :func:`snnjax.train.steps.make_train_step`.

    ``train_step(state, (inputs, labels), teacher_variables) -> (state, metrics)``; metrics are
    BPTT's (``loss``, ``accuracy``, ``grad_norm``, ``finite``). ``sltt_k``: 0 (or ``T``) trains on
    every step (SLTT); ``K`` in ``1..T-1`` on ``K`` random steps per iteration (SLTT-K).
    ``unroll``: of the ``lax.scan`` over time steps. 1 (default) keeps one step's activations alive,
    memory flat in T; ``True`` unrolls it (``train.sltt_unroll``): on XLA:CPU, whose convolutions run
    about 10x slower inside a loop, 10x faster, with memory growing with T (still below BPTT's; the
    same gradients).
    """
    num_steps = int(model.time_steps)
    if not 0 <= int(sltt_k) <= num_steps:
        raise ValueError(f"sltt_k={sltt_k} must be in 0..time_steps={num_steps} (0 = all steps)")
    k = int(sltt_k) or num_steps
    one_step = step_model(model)

    def train_step(
        state: TrainState, batch: steps.Batch, teacher_variables: Any = None
    ) -> tuple[TrainState, steps.Metrics]:
        inputs, labels = batch
        key = step_key(state, steps.MODEL_STREAM)
        teacher_logits = None
        if distillation is not None:
            teacher_logits = jax.lax.stop_gradient(distillation.teacher.apply(teacher_variables, inputs, train=False))
        # Transient collections (spike_stats) are not carried through the steps: they pass unchanged.
        model_state = {k: v for k, v in state.model_state.items() if k not in steps.TRANSIENT_COLLECTIONS}
        mutable = [*model_state, layers.NEURON_STATE]
        neuron0 = initial_neuron_state(
            one_step, {"params": state.params, **model_state}, step_input(inputs, jnp.int32(0))
        )
        if k < num_steps:
            order = jax.random.permutation(jax.random.fold_in(key, K_STREAM), num_steps)
            chosen = jnp.zeros((num_steps,), bool).at[order[:k]].set(True)
        else:
            chosen = jnp.ones((num_steps,), bool)

        def step_loss(logits):
            if teacher_logits is None:
                return losses.cross_entropy(logits, labels) / num_steps
            return (
                losses.hinton_kd(
                    logits, teacher_logits, labels, temperature=distillation.temperature, alpha=distillation.alpha
                )
                / num_steps
            )

        def body(carry, t):
            grads_sum, loss_sum, logits_sum, model_state, neuron_state = carry
            x_t = step_input(inputs, t)
            rngs = steps.model_rngs(jax.random.fold_in(key, t))

            def loss_fn(params):
                logits, new = one_step.apply(
                    {"params": params, **model_state, layers.NEURON_STATE: neuron_state},
                    x_t,
                    train=True,
                    mutable=mutable,
                    rngs=rngs,
                )
                return step_loss(logits), (logits, new)

            def with_grad(params):
                (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
                return loss, aux, grads

            def forward_only(params):
                loss, aux = loss_fn(params)
                return loss, aux, jax.tree.map(jnp.zeros_like, params)

            if k < num_steps:
                loss, (logits, new), grads = jax.lax.cond(chosen[t], with_grad, forward_only, state.params)
            else:
                loss, (logits, new), grads = with_grad(state.params)
            model_state = {name: new.get(name, v) for name, v in model_state.items()}
            carry = (
                jax.tree.map(jnp.add, grads_sum, grads),
                loss_sum + loss,
                logits_sum + logits,
                model_state,
                new[layers.NEURON_STATE],
            )
            return carry, None

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        logits0 = jnp.zeros((labels.shape[0], _num_outputs(one_step, state, model_state, inputs)), jnp.float32)
        init = (zeros, jnp.zeros((), jnp.float32), logits0, model_state, neuron0)
        (grads, loss, logits_sum, new_model_state, _), _ = jax.lax.scan(
            body, init, jnp.arange(num_steps), unroll=unroll
        )
        new_model_state = {**state.model_state, **new_model_state}
        new_state, grad_norm, finite = steps.apply_gradients(state, grads, loss, new_model_state, tx, nonfinite)
        metrics = {
            "loss": loss,
            "accuracy": losses.accuracy(logits_sum / num_steps, labels),
            "grad_norm": grad_norm,
            "finite": finite.astype(jnp.float32),
        }
        return new_state, metrics

    return train_step


def _num_outputs(one_step: nn.Module, state: TrainState, model_state: dict[str, Any], inputs: jax.Array) -> int:
    """Logits per example (from shapes only)."""
    x = step_input(inputs, jnp.int32(0))

    def run():
        return one_step.apply(
            {"params": state.params, **model_state},
            x,
            train=False,
            mutable=[layers.NEURON_STATE],
            rngs=steps.model_rngs(jax.random.key(0)),
        )[0]

    return int(jax.eval_shape(run).shape[-1])
