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

from snnjax import runtime

# Before anything starts JAX's CPU backend: multi-threaded Eigen convolutions (snnjax/runtime.py).
runtime.use_eigen_convolutions()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/idsnn.py:digits", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and summary.json.")
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache",
    os.environ.get("SNNJAX_COMPILATION_CACHE", ""),
    "Directory of JAX's persistent compilation cache (default: $SNNJAX_COMPILATION_CACHE; empty: off). "
    "A rerun or resume of the same config then loads its compiled steps instead of compiling them.",
)


def enable_compilation_cache(directory: str) -> None:
    """Persist every compiled XLA program under ``directory`` (shared safely by concurrent runs)."""
    import jax

    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(directory))
    # Small programs (eval, init) compile in well under JAX's default 1 s floor but are still worth keeping.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; overrides are written --config.key=value")
    from snnjax import config as config_lib
    from snnjax import methods
    from snnjax.train import mesh as mesh_lib
    from snnjax.train import preflight

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax/absl INFO lines drown the progress bar
    config = _CONFIG.value
    workdir = os.path.abspath(_WORKDIR.value)
    config_lib.validate(config)
    if _COMPILATION_CACHE.value:
        enable_compilation_cache(_COMPILATION_CACHE.value)
    mesh_lib.maybe_initialize_distributed()
    mesh_lib.check_batch_size(int(config.data.batch_size), mesh_lib.make_mesh())
    preflight.check_workdir(workdir, min_free_mb=float(config.train.min_free_disk_mb))
    methods.get(config.pipeline)(config, workdir)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    sys.exit(app.run(main))
