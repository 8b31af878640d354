"""Run a snnjax pipeline from a config file.

    python launch.py --config configs/idsnn.py:digits --workdir /tmp/idsnn
    python launch.py --config configs/idsnn.py --config.model.time_steps=6 --workdir runs/idsnn_c10

Writes ``WORKDIR/metrics.jsonl``, TensorBoard files, checkpoints and, at the end,
``WORKDIR/summary.json``. Started again with the same ``--workdir``, a run resumes from its latest
checkpoint. On several hosts (TPU pod slices, multi-node GPU) run the same command on every host.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/idsnn.py:digits", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and summary.json.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; overrides are written --config.key=value")
    from snnjax import config as config_lib, pipelines
    from snnjax.train import mesh as mesh_lib, preflight

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax/absl INFO lines drown the progress bar
    config = _CONFIG.value
    workdir = os.path.abspath(_WORKDIR.value)
    config_lib.validate(config)
    mesh_lib.maybe_initialize_distributed()
    mesh_lib.check_batch_size(int(config.data.batch_size), mesh_lib.make_mesh())
    preflight.check_workdir(workdir, min_free_mb=float(config.train.min_free_disk_mb))
    pipelines.get(config.pipeline)(config, workdir)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    sys.exit(app.run(main))
