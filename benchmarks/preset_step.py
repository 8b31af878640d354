"""Time one training step of a preset, or of the same preset in two checkouts side by side.

    python benchmarks/preset_step.py --config configs/baseline.py:fashion_mnist_60k
    python benchmarks/preset_step.py --config configs/idsnn.py:fashion_mnist_60k --root /path/old --root .

The step is the preset's student step as the launcher builds it (:func:`build_step`:
``steps.make_train_step``, or the SLTT step for ``train.through_time="sltt"``, with the TET objective
for ``train.loss="tet"``; with Hinton KD from the preset's ANN teacher when ``config.kd.enabled``),
jitted, on random inputs of the dataset's image shape ``[batch, H, W, C]``; parameters are freshly
initialised (step time does not depend on their values); SGD with momentum, not the preset's
optimizer (its update is a negligible part of the step). ``benchmarks/training_options.py`` builds
its arms with :func:`build_step` too. Each ``--root`` (a checkout holding ``snnjax/`` and ``configs/``) is timed in
its own process; with two or more, ``--rounds`` alternate them so that they share whatever load the
machine has, and the ratio of median step times to the first root is printed. One JSON line per
measurement, then a summary line. ``--save NAME`` also writes them to ``benchmarks/results/NAME.json``
(:mod:`benchmarks._results`: command, commit, machine, date, load; ``values.records`` the measurement
lines, ``values.summary`` the summary), rewritten after every measurement.

Use it to tell a code regression from a slower machine: a preset that took longer today than in a
recorded run is timed here against the checkout of that run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_SHAPES = {  # [H, W, C] of the datasets the CPU presets use (no data is loaded)
    "digits": (8, 8, 1),
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
    "cifar100": (32, 32, 3),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="configs/<file>.py[:preset]")
    p.add_argument("--root", action="append", help="checkout(s) to time (default: this one); repeat to compare")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds over the roots")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--save", default="", help="write benchmarks/results/SAVE.json (command, commit, machine)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _load_config(root: str, spec: str):
    import importlib.util

    path, _, preset = spec.partition(":")
    module_path = os.path.join(root, "configs", os.path.basename(path))
    module_spec = importlib.util.spec_from_file_location("preset_config", module_path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(preset or None)


class PresetStep(NamedTuple):
    """A preset's train step as the launcher builds it, with what one call needs (nothing jitted yet).

    A NamedTuple, not a dataclass: tests load this file by path, without registering it in sys.modules."""

    train_step: Any  # train_step(state, (x, y), teacher_variables) -> (state, metrics)
    state: Any  # the step-0 train state (fresh parameters)
    batch: tuple[Any, Any]  # random inputs [batch, H, W, C] and labels
    teacher_variables: Any  # the KD teacher's variables, or None
    kd: bool
    batch_size: int


def build_step(config, batch_size: int | None = None) -> PresetStep:
    """The student step of ``config`` as ``snnjax.train.loop.set_up`` makes it: ``steps.make_train_step``
    (with Hinton KD from the preset's teacher when ``config.kd.enabled``), replaced by the SLTT step for
    ``train.through_time="sltt"``, with the ``train.loss`` objective (TET) when it is not CE.
    ``batch_size``: default the preset's ``data.batch_size``. Imports the ``snnjax`` on ``sys.path``."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from snnjax import models
    from snnjax.train import state as state_lib
    from snnjax.train import steps as steps_lib

    batch = int(batch_size or config.data.batch_size)
    shape = IMAGE_SHAPES[config.data.name]
    num_classes = 100 if config.data.name == "cifar100" else 10
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, *shape)), jnp.float32)
    y = jnp.asarray(rng.integers(0, num_classes, batch))
    student = models.build(config.model, num_classes)
    variables = student.init({"params": jax.random.PRNGKey(0)}, x, train=False)
    variables = {k: v for k, v in variables.items() if k not in getattr(steps_lib, "TRANSIENT_COLLECTIONS", ())}
    tx = optax.sgd(0.01, momentum=0.9)
    state = state_lib.create_train_state(variables, tx, jax.random.PRNGKey(1))
    kd = "kd" in config and bool(config.kd.enabled)
    teacher_variables, distillation = None, None
    if kd:
        teacher = models.build(config.teacher.model, num_classes)
        teacher_variables = teacher.init({"params": jax.random.PRNGKey(2)}, x, train=False)
        distillation = steps_lib.Distillation(teacher, float(config.kd.temperature), float(config.kd.alpha))
    make_step, extra = steps_lib.make_train_step, {"nonfinite": config.train.nonfinite}
    if config.train.get("through_time", "bptt") != "bptt":  # (checkouts before SLTT have no such key)
        from snnjax.train import sltt

        make_step = sltt.choose_make_step(config.train, student, make_step)
    if config.train.get("loss", "ce") != "ce":  # as loop.set_up: the objective only when it is not CE
        extra["objective"] = steps_lib.objective_from_config(config.train)
    train_step = make_step(student, tx, distillation=distillation, **extra)
    return PresetStep(train_step, state, (x, y), teacher_variables, kd, batch)


def measure(root: str, spec: str, warmup: int, steps: int) -> dict:
    """Median wall time of the preset's jitted train step, imported from ``root``."""
    sys.path.insert(0, root)
    from snnjax import runtime

    runtime.use_eigen_convolutions()  # as launch.py
    import time

    import jax

    built = build_step(_load_config(root, spec))
    state, kd, batch = built.state, built.kd, built.batch_size
    x, y = built.batch
    teacher_variables = built.teacher_variables
    step = jax.jit(built.train_step)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        jax.block_until_ready(step(state, (x, y), teacher_variables))
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "root": os.path.abspath(root),
        "commit": _commit(root),
        "config": spec,
        "kd": kd,
        "batch": batch,
        "step_ms_median": round(1e3 * median, 1),
        "step_ms": [round(1e3 * t, 1) for t in times],
        "images_per_s": round(batch / median, 1),
        "load1": os.getloadavg()[0],
    }


def _commit(root: str) -> str:
    try:
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _results_module():
    """``benchmarks/_results.py``, beside this file (with this checkout's snnjax for the record's commit)."""
    for path in (os.path.dirname(HERE), HERE):
        if path not in sys.path:
            sys.path.insert(0, path)
    import _results

    return _results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    roots = args.root or [os.path.dirname(HERE)]
    if args.worker:
        print(json.dumps(measure(roots[0], args.config, args.warmup, args.steps)), flush=True)
        return
    _results = _results_module() if args.save else None
    load_before = _results.load() if _results else None
    records: list[dict] = []
    medians: dict[str, list[float]] = {r: [] for r in roots}
    for _ in range(args.rounds if len(roots) > 1 else 1):
        for root in roots:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--config", args.config, "--root", root]
            cmd += ["--warmup", str(args.warmup), "--steps", str(args.steps)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            record = json.loads(out.strip().splitlines()[-1])
            print(json.dumps(record), flush=True)
            medians[root].append(record["step_ms_median"])
            records.append(record)
            if _results:  # after every measurement: a comparison stopped early keeps what it measured
                _results.write(args.save, {"records": records}, load_before)
    first = statistics.median(medians[roots[0]])
    summary = {
        r: {"step_ms": statistics.median(m), "vs_first": round(statistics.median(m) / first, 3)}
        for r, m in medians.items()
    }
    print(json.dumps({"summary": summary}), flush=True)
    if _results:
        path = _results.write(args.save, {"records": records, "summary": summary}, load_before)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
