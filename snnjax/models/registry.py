"""One model registry: ``build(model_config, num_classes)`` for every model family, by ``name``.

Families (``config.model.name``):

=================  ==============================================  ===================================
family             names                                           defined in
=================  ==============================================  ===================================
ResNet / SEW       resnet18/34/50/101, sew_resnet18/34/50/101      :mod:`snnjax.models.factory`
VGG (hybrid)       vgg5, vgg9, vgg11, vgg13, vgg16, vgg19           :mod:`snnjax.methods.hybrid.vgg`
ResNet (hybrid)    hybrid_resnet6, hybrid_resnet12/20/34            :mod:`snnjax.methods.hybrid.resnet`
SNN2ANN nets       snn2ann_vgg, snn2ann_resnet17, bptt_vgg           :mod:`snnjax.methods.snn2ann.models`
=================  ==============================================  ===================================

Every family module has ``NAMES``, ``build(cfg, num_classes)`` and ``validate(cfg, prefix)``
(each family has its own config keys; there is no key "required by a shared schema"). The ResNet
family is registered here; a method's family registers itself (:func:`register`) when its module is
imported, and :mod:`snnjax.methods` imports every one of them, so code that builds a model from a
config (config validation, ``launch``, analysis, interop) imports ``snnjax.methods`` first. The shared
core neither imports a method's module nor names one in its code (tests/test_import_layers.py).

Pipelines, the training loop, analysis (``python -m snnjax.analysis --workdir``) and export all
build models here, so a checkpoint's saved ``model`` section rebuilds its network whatever the
pipeline that wrote it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import flax.linen as nn
import ml_collections

from snnjax.models import factory

# family -> its module (NAMES, build, validate), in the order of registration.
FAMILIES: dict[str, ModuleType] = {}


def register(family_name: str, module: ModuleType) -> None:
    """Add the model family ``family_name``, built by ``module`` (``NAMES``, ``build``, ``validate``).

    A method's family module calls it on import (``register("vgg", sys.modules[__name__])``); registering
    a family again replaces it (a reloaded module). A name may belong to one family only.
    """
    for other, owner in FAMILIES.items():
        clash = set(owner.NAMES) & set(module.NAMES)
        if other != family_name and clash:
            raise ValueError(f"model family {family_name!r}: {sorted(clash)} already belong to family {other!r}")
    FAMILIES[family_name] = module


register("resnet", factory)


def _modules() -> list[ModuleType]:
    return list(FAMILIES.values())


def names() -> tuple[str, ...]:
    """Every registered model name."""
    return tuple(n for module in _modules() for n in module.NAMES)


def family(name: str) -> Any:
    """The module that builds model ``name``; ``ValueError`` listing every name if there is none."""
    for module in _modules():
        if name in module.NAMES:
            return module
    # Only the built-in family: nothing imported snnjax.methods, whose families register on import.
    hint = "" if len(FAMILIES) > 1 else " (the methods' model families register when snnjax.methods is imported)"
    raise ValueError(f"config.model.name={name!r} is not valid; choose one of {list(names())}{hint}")


def validate(cfg: ml_collections.ConfigDict, prefix: str = "model") -> None:
    """Check a ``model`` section with its family's rules (errors name ``config.<prefix>.<key>``)."""
    module = family(cfg.name)
    try:
        module.validate(cfg, prefix)
    except (KeyError, AttributeError) as err:
        # A section written for another family (e.g. ResNet keys with name='vgg16') lacks this one's keys.
        key = err.args[0] if err.args else "?"
        raise ValueError(
            f"config.{prefix}.name={cfg.name!r} is a {module.__name__.rsplit('.', 1)[-1]} model, but config.{prefix} "
            f"has no key {key!r} that it needs (the section was written for another model family). Fix: start "
            f"from a config of that family (e.g. configs/hybrid_stdb.py for VGG, configs/snn2ann.py for SNN2ANN)."
        ) from None


def build(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    """The Flax module of ``cfg`` (a ``config.model`` section): ``apply(variables, x, train=...)`` -> logits."""
    return family(cfg.name).build(cfg, num_classes)


def ann_model_config(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The ANN twin of a spiking ``model`` section: same network and parameter names, ReLU, T = 1
    (and direct input where the family has an ``encoding``)."""
    out = ml_collections.ConfigDict(cfg.to_dict())
    out.neuron, out.time_steps = "relu", 1
    if "encoding" in out:
        out.encoding = "direct"
    return out


def upgrade_legacy(model: dict[str, Any]) -> dict[str, Any]:
    """A ``model`` section saved by snnjax 0.1 in the keys of today (checkpoints keep restoring).

    0.1 hybrid VGG sections had ``arch`` (the name), ``spike_grad``/``stdb_alpha`` (now
    ``surrogate``/``surrogate_param``) and unused ``reset``/``detach_reset``/``surrogate`` keys;
    0.1 SNN2ANN sections had ``arch`` next to the name the pipeline wrote (``snn2ann_vgg``).
    """
    out = dict(model)
    if "spike_grad" in out:  # hybrid VGG
        out.setdefault("name", out.get("arch"))
        out["surrogate"] = out.pop("spike_grad")
        out["surrogate_param"] = out.pop("stdb_alpha", 0.3)
        for key in ("arch", "reset", "detach_reset"):
            out.pop(key, None)
    elif "mapping_unit" in out and "arch" in out:  # SNN2ANN
        arch = out.pop("arch")
        out.setdefault("name", f"snn2ann_{arch}")
    return out
