"""SNN2ANN config: the ``arm`` key (``snn2ann`` | ``bptt``) and its validation (the model section is
checked by its family, :func:`snnjax.methods.snn2ann.models.validate`)."""

from __future__ import annotations

import ml_collections

from snnjax import config as config_lib
from snnjax.methods.snn2ann import models

ARMS = models.ARMS


def validate(cfg: ml_collections.ConfigDict) -> None:
    """``arm`` is known and matches ``model.name`` (``<arm>_<arch>``); no teacher."""
    if cfg.arm not in ARMS:
        config_lib.fail("arm", cfg.arm, f"choose one of {list(ARMS)}")
    if cfg.model.name not in models.NAMES or models.split_name(cfg.model.name)[0] != cfg.arm:
        names = [n for n in models.NAMES if models.split_name(n)[0] == cfg.arm]
        config_lib.fail(
            "model.name",
            cfg.model.name,
            f"config.arm={cfg.arm!r} trains one of {names} (the presets "
            "set both; set --config.model.name too when overriding config.arm)",
        )
    if cfg.kd.enabled:
        config_lib.fail("kd.enabled", cfg.kd.enabled, "SNN2ANN trains without a teacher; set it to False")
