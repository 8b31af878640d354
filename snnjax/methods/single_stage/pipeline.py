"""Single-stage training: the ANN teacher (configs/teacher.py) or the directly trained Spiking
ResNet baseline (configs/baseline.py)."""

from __future__ import annotations

from typing import Any

import ml_collections

from snnjax import data as data_lib
from snnjax.analysis.workdir import stage_spike_summary
from snnjax.train import loop
from snnjax.train.run_outputs import finish_run


def run(config: ml_collections.ConfigDict, workdir: str, *, mesh: Any) -> dict[str, Any]:
    """Run the pipeline of ``config`` in ``workdir``; ``mesh``: the run's mesh (built once by ``launch.py``)."""
    splits = data_lib.load_from_config(config.data)
    result = loop.train_and_evaluate(config, workdir, stage="train", splits=splits, mesh=mesh)
    return finish_run(workdir, {**result.summary, "spikes": stage_spike_summary(result, splits)})
