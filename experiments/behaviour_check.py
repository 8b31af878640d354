"""Same behaviour before and after a refactor: a short digits run of every pipeline, its records compared.

    python experiments/behaviour_check.py record /tmp/before      # at the old commit (its checkout)
    python experiments/behaviour_check.py record /tmp/after       # at the new commit
    python experiments/behaviour_check.py compare /tmp/before /tmp/after

``record`` runs each :data:`RUNS` entry with ``launch.py`` in ``ROOT/<name>`` (one epoch per stage) and
writes ``ROOT/<name>.json``: every record of its ``metrics.jsonl`` and the accuracies of its
``summary.json``, less the keys that measure time or memory. ``compare`` prints the first difference
of each run and exits 1 when any run differs: a refactor that claims "no behaviour change" must show
bitwise-equal losses and accuracies on the same machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON = [
    "--config.epochs_all=1",
    "--config.train.progress_bar=False",
    "--config.train.tensorboard=False",
    "--compilation_cache=off",
]
RUNS = {
    "baseline": ["configs/baseline.py:digits"],
    "idsnn": ["configs/idsnn.py:digits"],
    "hybrid": ["configs/hybrid_stdb.py:digits"],
    "snn2ann": ["configs/snn2ann.py:digits"],
    "pipe_s": ["configs/pretrain.py:pipe_s,digits"],
    "pipe_d": ["configs/pretrain.py:pipe_d,digits"],
}
# Measurements of the machine (and the commit that ran), not of the computation.
UNSTABLE = ("time", "seconds", "_s", "per_s", "memory", "rss", "bytes", "compile", "restored_from", "environment")


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not any(u in k for u in UNSTABLE)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def record(root: str) -> None:
    os.makedirs(root, exist_ok=True)
    for name, args in RUNS.items():
        out = os.path.join(root, f"{name}.json")
        if os.path.exists(out):
            continue
        workdir = os.path.join(root, name)
        command = [sys.executable, "launch.py", "--config", args[0], *args[1:], *COMMON, "--workdir", workdir]
        print("+", " ".join(command), flush=True)
        subprocess.run(command, cwd=REPO, check=True)
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            records = [json.loads(line) for line in f if line.strip()]
        with open(os.path.join(workdir, "summary.json")) as f:
            summary = json.load(f)
        with open(out, "w") as f:
            json.dump({"records": _stable(records), "summary": _stable(summary)}, f, indent=1, sort_keys=True)


def _first_difference(a, b, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'after' if key in b else 'before'}"
            found = _first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} entries before, {len(b)} after"
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} before, {b!r} after"


def compare(before: str, after: str) -> int:
    failed = 0
    for name in RUNS:
        with open(os.path.join(before, f"{name}.json")) as f:
            a = json.load(f)
        with open(os.path.join(after, f"{name}.json")) as f:
            b = json.load(f)
        difference = _first_difference(_stable(a), _stable(b))  # records of an older UNSTABLE too
        print(f"{name}: {'same' if difference is None else 'DIFFERS ' + difference}")
        failed += difference is not None
    return int(failed > 0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
