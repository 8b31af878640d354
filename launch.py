"""Run a snnjax pipeline from a config file (a checkout's shortcut for ``python -m snnjax.launch``).

    python launch.py --config configs/idsnn.py:digits --workdir /tmp/idsnn
    python launch.py --config configs/idsnn.py --config.model.time_steps=6 --workdir runs/idsnn_c10

Writes ``WORKDIR/metrics.jsonl``, TensorBoard files, checkpoints and, at the end,
``WORKDIR/summary.json``. Started again with the same ``--workdir``, a run resumes from its latest
checkpoint. On several hosts (TPU pod slices, multi-node GPU) run the same command on every host
(README, "Multi-host runs"). Everything lives in :mod:`snnjax.launch`.
"""

from snnjax.launch import enable_compilation_cache, main, run  # noqa: F401  (re-exported)

if __name__ == "__main__":
    run()
