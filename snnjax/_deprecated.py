"""Old import paths kept for one release: each old module becomes an alias of its new home.

A shim module calls :func:`redirect` with its own ``__name__``; importing it warns once
(``DeprecationWarning``) and leaves the new module in ``sys.modules`` under the old name, so
``import snnjax.transplant`` and ``snnjax.methods.idsnn.transplant`` are the same module object.
"""

from __future__ import annotations

import importlib
import sys
import warnings

# Old module -> new module (listed in README, "Moved in 0.2").
MOVED = {
    "snnjax.transplant": "snnjax.methods.idsnn.transplant",
    "snnjax.ablation": "snnjax.methods.idsnn.ablation",
    "snnjax.conversion": "snnjax.methods.hybrid.conversion",
    "snnjax.stdb": "snnjax.methods.hybrid.neuron",
    "snnjax.models.vgg": "snnjax.methods.hybrid.vgg",
    "snnjax.snn2ann": "snnjax.methods.snn2ann",
    "snnjax.snn2ann.ata": "snnjax.methods.snn2ann.ata",
    "snnjax.snn2ann.layers": "snnjax.methods.snn2ann.layers",
    "snnjax.snn2ann.mapping": "snnjax.methods.snn2ann.mapping",
    "snnjax.snn2ann.models": "snnjax.methods.snn2ann.models",
    "snnjax.snn2ann.step": "snnjax.methods.snn2ann.step",
    "snnjax.pipelines": "snnjax.methods",
    "snnjax.pipelines.idsnn": "snnjax.methods.idsnn.pipeline",
    "snnjax.pipelines.hybrid_stdb": "snnjax.methods.hybrid.pipeline",
    "snnjax.pipelines.snn2ann": "snnjax.methods.snn2ann.pipeline",
    "snnjax.pipelines.pretrain": "snnjax.methods.pretrain.pipeline",
    "snnjax.pipelines.train": "snnjax.train.pipeline",
    "snnjax.pipelines.common": "snnjax.train.summary",
}


def warn(old: str, stacklevel: int = 3) -> str:
    new = MOVED[old]
    warnings.warn(
        f"{old} moved to {new}; the old import path will be removed in the next release",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return new


def redirect(old: str) -> None:
    """Make ``sys.modules[old]`` the module ``MOVED[old]`` (called by the shim module ``old`` itself)."""
    new = warn(old)
    sys.modules[old] = importlib.import_module(new)
    # A package's old submodules: aliased now, or importing them would load second copies.
    for old_sub, new_sub in MOVED.items():
        if old_sub.startswith(old + "."):
            sys.modules[old_sub] = importlib.import_module(new_sub)
