"""Single-stage training: the ANN teacher (configs/teacher.py) or the directly trained Spiking
ResNet baseline (configs/baseline.py)."""

from __future__ import annotations

from typing import Any

import ml_collections

from snnjax.pipelines.common import finish_run
from snnjax.train import loop


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    result = loop.train_and_evaluate(config, workdir, stage="train")
    return finish_run(workdir, result.summary)
