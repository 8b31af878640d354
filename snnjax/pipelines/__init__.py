"""Pipelines: short scripts of library calls, one per paper, selected by ``config.pipeline``."""

from __future__ import annotations

import importlib
from typing import Any, Callable

import ml_collections

_MODULES = {
    "train": "snnjax.pipelines.train",
    "idsnn": "snnjax.pipelines.idsnn",
    "hybrid_stdb": "snnjax.pipelines.hybrid_stdb",
    "snn2ann": "snnjax.pipelines.snn2ann",
    "pretrain": "snnjax.pipelines.pretrain",
}


def get(name: str) -> Callable[[ml_collections.ConfigDict, str], dict[str, Any]]:
    """The ``run(config, workdir) -> summary`` function of pipeline ``name``."""
    if name not in _MODULES:
        raise ValueError(f"config.pipeline={name!r} is not valid; choose one of {sorted(_MODULES)}")
    return importlib.import_module(_MODULES[name]).run
