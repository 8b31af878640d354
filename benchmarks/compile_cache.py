"""Compile time of a second launch of the digits IDSNN run in another workdir, without and with the
persistent compilation cache (on by default since issue 26).

    python benchmarks/compile_cache.py [--epochs 1] [--save compile_cache]

Three launches of ``configs/idsnn.py:digits`` (every stage shortened to ``--epochs``; compilation does
not depend on it): one with ``--compilation_cache=`` (off: what every launch paid before), then two with
a fresh cache directory, each in a new workdir: the first fills the cache, the second is the number
to compare. Reported per launch: the teacher's and the student's ``compile_time_s`` (from their
summaries: lowering, compiling or loading the train and eval steps) and the wall time of the process.
Printed as JSON; ``--save NAME`` writes ``benchmarks/results/NAME.json`` (:mod:`benchmarks._results`:
command, commit, machine, date, load before and after; the measurements in ``values``), the record
benchmarks/RESULTS.md quotes (``compile_cache``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, ROOT)  # snnjax, for the record's commit
import _results  # noqa: E402  (benchmarks/_results.py, next to this script)

from snnjax import workdir_layout  # noqa: E402


def launch(workdir: str, cache: str, epochs: int) -> dict[str, float]:
    cmd = [
        sys.executable,
        os.path.join(ROOT, "launch.py"),
        "--config=configs/idsnn.py:digits",
        f"--workdir={workdir}",
        f"--config.epochs_all={epochs}",
        "--config.train.progress_bar=False",
        "--config.teacher.train.progress_bar=False",
        f"--compilation_cache={cache}",
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": ROOT})
    wall = time.perf_counter() - t0
    summary = json.load(open(workdir_layout.summary(workdir)))
    teacher = summary["teacher"]["compile_time_s"]
    student = summary["compile_time_s"]
    return {"teacher_compile_s": teacher, "student_compile_s": student, "compile_s": teacher + student, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--save", default="", help="write benchmarks/results/SAVE.json (command, commit, machine)")
    args = parser.parse_args()
    load_before = _results.load()
    root = tempfile.mkdtemp(prefix="snnjax_cc_")
    try:
        values = measure(root, args.epochs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"load_before": load_before, **values, "load_after": _results.load()}, indent=2))
    if args.save:
        print(f"wrote {_results.write(args.save, values, load_before)}")


def measure(root: str, epochs: int) -> dict:
    cache = os.path.join(root, "cache")
    return {
        "no_cache": launch(os.path.join(root, "a"), "", epochs),
        "cache_first": launch(os.path.join(root, "b"), cache, epochs),
        "cache_second_other_workdir": launch(os.path.join(root, "c"), cache, epochs),
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    main()
