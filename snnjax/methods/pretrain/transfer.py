"""Pretraining as a bridge (Lin et al., TNNLS 2024): the ANN twin of an SNN and the ANN -> SNN transfer.

ANN and SNN share one parameter layout (the shared ResNet; the activation makes it an ANN or an
SNN), so loading the pretrained ANN into the SNN is a tree copy (:func:`load_pretrained`): every
conv kernel, BN gamma/beta, BN running mean/var and the FC layer, except the modules named in
``reinit`` (pipe-D: ``stem_conv``, whose input channels differ: 1 or 3 static channels vs 2 event
polarities). The ANN twin (:func:`build_ann`) uses ReLU or the sharpened ReLU, whose epoch the engine feeds
(:mod:`snnjax.epoch_clock`).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from snnjax import layers, models, trees
from snnjax.methods.pretrain.sharpened import SharpenedReLU

TRANSFER_COLLECTIONS = ("params", "batch_stats")


REINITIALISED = "re-initialised"
MISSING = "not in the source"


def _flat(variables: dict[str, Any]) -> dict[str, Any]:
    return {trees.path_name(path): leaf for path, leaf in trees.flatten(variables).items()}


def transfer_counts(report: trees.TransferReport) -> dict[str, Any]:
    """The ``transfer`` entry of summary.json: copied count, re-initialised / kept / unused paths."""
    return {
        "copied": report.transplanted,
        "reinitialised": list(report.kept_paths(REINITIALISED)),
        "kept": list(report.kept_paths(MISSING)),
        "unused": list(report.unused),
    }


def _module_of(path: str) -> str:
    """``params/stage0_block0/conv1/kernel -> stage0_block0/conv1``."""
    return "/".join(path.split("/")[1:-1])


def _matches(path: str, prefixes: tuple[str, ...]) -> bool:
    module = _module_of(path)
    return any(module == p or module.startswith(p + "/") for p in prefixes)


def load_pretrained(
    source: dict[str, Any], target: dict[str, Any], *, reinit: tuple[str, ...] = ()
) -> tuple[dict[str, Any], trees.TransferReport]:
    """Copy ``source`` (ANN) variables into ``target`` (SNN) variables of the same layout.

    Args:
      source: ``{"params": ..., "batch_stats": ..., ...}`` of the pretrained ANN.
      target: freshly initialised variables of the SNN (same parameter names).
      reinit: module paths (e.g. ``"stem_conv"``, ``"stage0_block0/conv1"``) whose leaves keep the
        target's initial values.

    Returns:
      ``(variables, report)``: ``target``'s tree with every ``params`` / ``batch_stats`` leaf
      replaced by the source's leaf of the same path (cast to the target's dtype), except the
      ``reinit`` modules and leaves the source lacks; the other collections of ``target`` as given.

    Raises:
      ValueError: a ``reinit`` entry matches no module, or a copied leaf's shape differs (the
        message names the path, both shapes and the fix).
    """
    src = _flat({c: source[c] for c in TRANSFER_COLLECTIONS if c in source})
    src_all = _flat(source)
    dst = _flat({c: target[c] for c in TRANSFER_COLLECTIONS if c in target})
    modules = sorted({_module_of(p) for p in dst})
    for prefix in reinit:
        if not any(m == prefix or m.startswith(prefix + "/") for m in modules):
            raise ValueError(
                f"config.pretrain.reinit names {prefix!r}, which matches no module of the SNN; "
                f"valid module paths include {[m for m in modules if '/' not in m]}"
            )
    out, entries = {}, []
    for path, leaf in dst.items():
        if _matches(path, reinit):
            out[path] = leaf
            entries.append((path, f"{trees.KEPT} ({REINITIALISED})"))
        elif path not in src:
            out[path] = leaf
            entries.append((path, f"{trees.KEPT} ({MISSING})"))
        else:
            value = src[path]
            if tuple(value.shape) != tuple(leaf.shape):
                raise ValueError(
                    f"cannot load pretrained {path}: the ANN has shape {tuple(value.shape)}, the SNN "
                    f"{tuple(leaf.shape)}. Fix: if the input channels or classes differ (e.g. event data with 2 "
                    f"polarity channels), add {_module_of(path)!r} to config.pretrain.reinit (comma-separated)."
                )
            out[path] = jnp.asarray(value, dtype=leaf.dtype)
            entries.append((path, path))
    unused = tuple(sorted(p for p in src_all if p not in dst))
    merged = {k: v for k, v in target.items() if k not in TRANSFER_COLLECTIONS}
    merged.update(
        trees.rebuild(
            {c: target[c] for c in TRANSFER_COLLECTIONS if c in target},
            {tuple(p.split("/")): v for p, v in out.items()},
        )
    )
    return merged, trees.TransferReport(tuple(entries), unused)


# ---------------------------------------------------------------------------------------------
# The ANN twin and its epoch-fed step.
# ---------------------------------------------------------------------------------------------


def sharpen_horizon(pretrain: ml_collections.ConfigDict) -> float:
    """The "200" of ``a = min(e / 200, 0.49)``: the config value, or 2 x pretrain epochs when 0."""
    horizon = float(pretrain.sharpen_horizon_epochs)
    return horizon if horizon > 0 else 2.0 * int(pretrain.train.epochs)


def build_ann(snn_model: ml_collections.ConfigDict, num_classes: int, pretrain: ml_collections.ConfigDict) -> nn.Module:
    """The ANN twin: the SNN's ResNet with ReLU or :class:`SharpenedReLU`, T = 1, BN gamma = ``pretrain.bn_scale_init``.

    The registry gives ANNs gamma 1.0; the pretraining paper's ANN uses tdBN's V_th init (0.5),
    so the module is cloned with that value.
    """
    ann = models.build(models.ann_model_config(snn_model), num_classes)
    activation: Any = layers.ReLU
    if pretrain.activation == "sharpened":
        activation = functools.partial(SharpenedReLU, horizon_epochs=sharpen_horizon(pretrain))
    return ann.clone(activation=activation, bn_scale_init=float(pretrain.bn_scale_init))


# ---------------------------------------------------------------------------------------------
# Official fine-tuning details: momentum carried over (pipe-S), loaded tensors frozen (pipe-D).
# ---------------------------------------------------------------------------------------------


def copied_params(report: trees.TransferReport) -> tuple[str, ...]:
    """``params/...`` paths of the target leaves that were loaded from the source."""
    kept = set(report.kept_paths())
    return tuple(path for path, _ in report.entries if path.startswith("params/") and path not in kept)


def _traces(opt_state: Any) -> list[Any]:
    """The momentum buffers (``optax.TraceState``) of an optimizer state, in order."""
    is_trace = lambda x: isinstance(x, optax.TraceState)  # noqa: E731
    return [x for x in jax.tree.leaves(opt_state, is_leaf=is_trace) if is_trace(x)]


def _path_key(path) -> str:
    return "params/" + "/".join(str(getattr(p, "key", p)) for p in path)


def load_momentum(target: Any, source: Any, copied: tuple[str, ...]) -> Any:
    """``target`` (a fresh fine-tuning optimizer state) with the SGD momentum buffers of ``source``
    (the pretraining optimizer's state) for every parameter in ``copied`` (``params/...`` paths);
    other buffers stay zero and step counts stay fresh (the official fine-tuning resets the lr and
    its scheduler after loading the optimizer state).

    Raises ``ValueError`` when either optimizer has no momentum (SGD with momentum needed).
    """
    src, dst = _traces(source), _traces(target)
    if len(src) != 1 or len(dst) != 1:
        raise ValueError(
            "config.pretrain.load_optimizer_state=True loads SGD momentum buffers: both "
            "config.pretrain.optim and config.optim must be SGD with momentum > 0 "
            f"(found {len(src)} and {len(dst)} momentum states)"
        )
    src_flat = {_path_key(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(src[0].trace)}
    wanted = set(copied)

    def pick(path, leaf):
        key = _path_key(path)
        value = src_flat.get(key)
        if key in wanted and value is not None and tuple(value.shape) == tuple(leaf.shape):
            return jnp.asarray(value, leaf.dtype)
        return leaf

    replaced = dst[0]._replace(trace=jax.tree_util.tree_map_with_path(pick, dst[0].trace))
    is_trace = lambda x: isinstance(x, optax.TraceState)  # noqa: E731
    return jax.tree.map(lambda x: replaced if is_trace(x) else x, target, is_leaf=is_trace)


def trainable_mask(params: Any, copied: tuple[str, ...]) -> Any:
    """A params-shaped tree: False for every loaded (copied) parameter, True for the rest (the
    re-initialised modules and parameters the source lacks): the official pipe-D freezing."""
    frozen = set(copied)
    return jax.tree_util.tree_map_with_path(lambda path, _: _path_key(path) not in frozen, params)
