"""The four papers' methods, one folder each, all of the same shape, and the single-stage pipeline.

``snnjax/methods/<method>/``: the algorithm modules, ``config.py`` (the method's config-section
defaults and ``validate(config)``), ``pipeline.py`` (``run(config, workdir)``, a short script of
library calls) and ``__init__.py`` (its public names). A method depends on the shared core
(neurons, surrogates, layers, losses, models, data, train, analysis, export), never on another method.
``single_stage/`` holds only the ``pipeline.py`` of single-stage training (``pipeline="train"``:
configs/teacher.py, configs/baseline.py).

``config.pipeline`` selects what ``launch.py`` runs: :func:`get` gives its ``run``, :func:`validate`
its config check.

Importing this package registers every method's model family in :mod:`snnjax.models` (each family
module registers itself on import): code that builds a model from a config imports it first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import ml_collections

# The methods' model families: each registers itself in snnjax.models on import (vgg, hybrid_resnet, snn2ann).
from snnjax.methods.hybrid import resnet as _hybrid_resnet  # noqa: F401
from snnjax.methods.hybrid import vgg as _hybrid_vgg  # noqa: F401
from snnjax.methods.snn2ann import models as _snn2ann_models  # noqa: F401

# config.pipeline -> the package holding pipeline.py (and config.py with validate, where it has one).
PIPELINES = {
    "train": "snnjax.methods.single_stage",  # single-stage training (teacher.py, baseline.py): no method
    "idsnn": "snnjax.methods.idsnn",
    "hybrid_stdb": "snnjax.methods.hybrid",
    "snn2ann": "snnjax.methods.snn2ann",
    "pretrain": "snnjax.methods.pretrain",
}


def _module(name: str, part: str) -> Any:
    if name not in PIPELINES:
        raise ValueError(f"config.pipeline={name!r} is not valid; choose one of {sorted(PIPELINES)}")
    return importlib.import_module(f"{PIPELINES[name]}.{part}")


def get(name: str) -> Callable[..., dict[str, Any]]:
    """The ``run(config, workdir, *, mesh) -> summary`` function of pipeline ``name``."""
    return _module(name, "pipeline").run


def validate(config: ml_collections.ConfigDict) -> None:
    """The method's own checks of ``config`` (its sections and what it needs of the shared ones)."""
    if config.pipeline != "train":
        _module(config.pipeline, "config").validate(config)
