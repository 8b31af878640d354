"""Run a snnjax pipeline from a config file (a checkout's shortcut for ``python -m snnjax.launch``).

    python launch.py --config configs/idsnn.py:digits --workdir /tmp/idsnn
    python launch.py --config configs/idsnn.py --config.model.time_steps=6 --workdir runs/idsnn_c10

Writes ``WORKDIR/metrics.jsonl``, TensorBoard files, checkpoints and, at the end,
``WORKDIR/summary.json``. Started again with the same ``--workdir``, a run resumes from its latest
checkpoint. On several hosts (TPU pod slices, multi-node GPU) run the same command on every host
(docs/running.md, "Multi-process runs"). Everything lives in :mod:`snnjax.launch`.
"""

import os
import sys


def _exit_if_workdir_busy() -> None:
    """Stop at once, in one line, when a live run on this host holds ``--workdir``: before
    ``import snnjax``, whose ``__init__`` imports JAX and Flax (seconds). ``workdir_lock`` imports the
    standard library only, so it is loaded from its file, without the package
    (:func:`snnjax.launch.exit_if_workdir_busy` does the same for ``python -m snnjax.launch``)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "snnjax", "train", "workdir_lock.py")
    if not os.path.isfile(path):  # not a checkout: snnjax.launch.run checks after the package import
        return
    spec = importlib.util.spec_from_file_location("_snnjax_standalone_workdir_lock", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    module.exit_if_busy(sys.argv)


if __name__ == "__main__":
    _exit_if_workdir_busy()

from snnjax.launch import enable_compilation_cache, main, run  # noqa: E402, F401  (re-exported)

if __name__ == "__main__":
    run()
