"""The ANN branch's convolutions take conv_auto_grad's kernel gradient: the loss and gradients of
the SNN2ANN objective equal those of plain ``lax.conv_general_dilated`` (the code before)."""

import jax
import jax.numpy as jnp
import numpy as np

from snnjax import losses, models
from snnjax.methods import snn2ann
from snnjax.methods.snn2ann import layers
from snnjax.models import conv


def _loss_and_grads(monkeypatch, conv_impl):
    monkeypatch.setattr(layers, "conv_auto_grad", conv_impl)
    # Official options on (membrane dropout 0.5, PyTorch init); 32x32 inputs so that the split
    # kernel gradient cuts the batch of 4 into pieces of 2 (snnjax.models.conv.split_piece).
    model = models.build(snn2ann.model_config(layers="1,M,2", width=2, time_steps=4, dropout=(0.25,)), 3)
    x = jax.random.normal(jax.random.key(1), (4, 32, 32, 1))
    labels = jnp.array([0, 1, 2, 1])
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x, train=False)
    params = variables.pop("params")
    variables.pop("spike_stats", None)

    def loss_fn(p):
        out, _ = model.apply(
            {"params": p, **variables},
            x,
            train=True,
            method="branches",
            mutable=list(variables),
            rngs={"dropout": jax.random.key(5)},
        )
        return losses.cross_entropy(out.ann_logits, labels)

    return jax.jit(jax.value_and_grad(loss_fn))(params)


def test_split_kernel_gradient_matches_plain_xla_convolutions(monkeypatch):
    assert conv.split_piece(4, 32 * 32) == 2  # the split path really cuts the batch
    loss_ref, grads_ref = _loss_and_grads(monkeypatch, jax.lax.conv_general_dilated)
    loss, grads = _loss_and_grads(monkeypatch, conv.conv_split_grad)
    assert float(loss) == float(loss_ref)  # same forward, bit for bit
    flat_ref, flat = jax.tree.leaves(grads_ref), jax.tree.leaves(grads)
    assert any(np.abs(np.asarray(g)).max() > 0 for g in flat_ref)
    for g, r in zip(flat, flat_ref):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-6)
