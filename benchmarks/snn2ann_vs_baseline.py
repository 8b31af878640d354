"""SNN2ANN train step vs direct surrogate-gradient (BPTT) training of the same SNN, side by side.

    python benchmarks/snn2ann_vs_baseline.py                       # digits + a CIFAR-shaped batch
    python benchmarks/snn2ann_vs_baseline.py --cases fashion_mnist # the fashion_mnist CPU preset's net, 28x28
    python benchmarks/snn2ann_vs_baseline.py --cases cifar --cifar-width 64 --cifar-batch 512   # paper size (GPU)
    python benchmarks/snn2ann_vs_baseline.py --cases cifar --time-steps 2,4,8,16 --memory-only --save NAME

``--save NAME`` writes ``benchmarks/results/NAME.json`` (command, commit, machine, date, load and
the values; :mod:`benchmarks._results`), the files README.md and docs/snn2ann.md quote from.

Both arms train the same plain conv net (same layers, parameter count and T) with the same
optimizer: SNN2ANN with :func:`snnjax.methods.snn2ann.make_train_step` (CE on the ANN branch; the SNN
branch runs T steps forward without gradient), the baseline with
:func:`snnjax.train.steps.make_train_step` (BPTT through T steps of IF neurons with a rectangular
surrogate). Reported per arm:

- step time: median of ``--repeats`` jitted steps after ``--warmup`` steps (seconds), the two
  arms' steps interleaved (one step of each per round) so that other load on a shared machine
  hits both alike; not measured with ``--memory-only``;
- compiled step memory: ``jax.jit(step).lower(...).compile().memory_analysis()``, temporaries +
  arguments (bytes); on a CPU this is XLA's buffer assignment, not a measured peak.

and the ratios SNN2ANN / BPTT (the paper: 0.377x training time, 0.27x GPU memory on CIFAR).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _results  # noqa: E402  (benchmarks/_results.py, next to this script)

from snnjax import data as data_lib
from snnjax import models, runtime
from snnjax.data import batches as data_batches
from snnjax.methods import snn2ann
from snnjax.train import steps
from snnjax.train.state import create_train_state


def _batch(case: str, batch_size: int, num_classes: int) -> tuple[jax.Array, jax.Array]:
    """Real normalised digits / Fashion-MNIST images, or a random CIFAR-shaped batch ``[B, 32, 32, 3]``."""
    if case in ("digits", "fashion_mnist"):
        splits = data_lib.load_dataset(case)
        x = data_batches.normalize(jnp.asarray(splits.train.images[:batch_size]), splits.mean, splits.std)
        return x, jnp.asarray(splits.train.labels[:batch_size])
    key_x, key_y = jax.random.split(jax.random.key(0))
    return (
        jax.random.normal(key_x, (batch_size, 32, 32, 3), jnp.float32),
        jax.random.randint(key_y, (batch_size,), 0, num_classes, jnp.int32),
    )


class Arm:
    """One compiled train step and its state, stepped one call at a time."""

    def __init__(self, model, make_step, batch, abstract: bool = False):
        """``abstract``: shapes only (``jax.eval_shape``), enough to compile and read the memory; cannot step."""
        x, _ = batch
        tx = optax.chain(optax.add_decayed_weights(5e-4), optax.adam(1e-3))

        def init(key):
            variables = model.init({"params": key, "dropout": key}, x[:1], train=False)
            variables = {k: v for k, v in variables.items() if k not in steps.TRANSIENT_COLLECTIONS}
            return create_train_state(variables, tx, jax.random.key(2))

        self.state = jax.eval_shape(init, jax.random.key(1)) if abstract else jax.jit(init)(jax.random.key(1))
        variables = {"params": self.state.params}
        self.batch = batch
        self.num_params = int(sum(np.prod(p.shape) for p in jax.tree.leaves(variables["params"])))
        t0 = time.perf_counter()
        self.compiled = jax.jit(make_step(model, tx), donate_argnums=0).lower(self.state, batch).compile()
        self.compile_s = time.perf_counter() - t0
        self.times: list[float] = []

    def step(self, record: bool = True) -> None:
        t = time.perf_counter()
        self.state, metrics = self.compiled(self.state, self.batch)
        jax.block_until_ready(metrics)
        if record:
            self.times.append(time.perf_counter() - t)
        self.loss = float(metrics["loss"])

    def report(self) -> dict[str, object]:
        mem = self.compiled.memory_analysis()
        return {
            "step_s": statistics.median(self.times) if self.times else None,
            "step_times_s": [round(t, 4) for t in self.times],
            "compile_s": self.compile_s,
            "temp_bytes": int(mem.temp_size_in_bytes),
            "argument_bytes": int(mem.argument_size_in_bytes),
            "memory_bytes": int(mem.temp_size_in_bytes + mem.argument_size_in_bytes),
            "num_params": self.num_params,
            "final_loss": getattr(self, "loss", None),
        }


def run_case(case: str, time_steps: int, args: argparse.Namespace) -> dict[str, object]:
    """Both arms of ``case`` at ``time_steps``: per-arm reports and the SNN2ANN / BPTT ratios."""
    load_before = _results.load()
    if case in ("digits", "fashion_mnist"):
        dropout = (0.0,) if case == "digits" else (0.25, 0.25, 0.0)  # as the configs' presets
        cfg = snn2ann.model_config(layers="1,1,M,2,2,M", width=16, time_steps=time_steps, dropout=dropout)
        batch_size, num_classes = args.digits_batch, 10
    else:
        cfg = snn2ann.model_config(width=args.cifar_width, time_steps=time_steps)  # VGG-13 layout
        batch_size, num_classes = args.cifar_batch, 100
    if args.membrane_dropout is not None:
        cfg.membrane_dropout = args.membrane_dropout
    batch = _batch(case, batch_size, num_classes)
    bptt = ml_collections.ConfigDict({**cfg.to_dict(), "name": "bptt_vgg"})
    arms = {
        "snn2ann": Arm(models.build(cfg, num_classes), snn2ann.make_train_step, batch, args.memory_only),
        "bptt": Arm(models.build(bptt, num_classes), steps.make_train_step, batch, args.memory_only),
    }
    if not args.memory_only:
        for _ in range(args.warmup):
            for arm in arms.values():
                arm.step(record=False)
        # Interleaved, so that load from other processes on a shared machine hits both arms alike.
        for _ in range(args.repeats):
            for arm in arms.values():
                arm.step()
    pair_ratios = [a / b for a, b in zip(arms["snn2ann"].times, arms["bptt"].times)]
    reports = {name: arm.report() for name, arm in arms.items()}
    timed = not args.memory_only
    ratios = {
        "step_time": reports["snn2ann"]["step_s"] / reports["bptt"]["step_s"] if timed else None,
        "step_time_median_of_pairs": statistics.median(pair_ratios) if timed else None,
        "memory": reports["snn2ann"]["memory_bytes"] / reports["bptt"]["memory_bytes"],
        "temp_memory": reports["snn2ann"]["temp_bytes"] / reports["bptt"]["temp_bytes"],
    }
    return {
        "case": case,
        "layers": cfg.layers,
        "width": int(cfg.width),
        "time_steps": int(cfg.time_steps),
        "batch_size": batch_size,
        "membrane_dropout": float(cfg.membrane_dropout),
        "init": cfg.init,
        "load_before": load_before,
        "load_after": _results.load(),
        "arms": reports,
        "ratio_snn2ann_over_bptt": ratios,
    }


def _print(result: dict[str, object]) -> None:
    print(
        f"\n== {result['case']}: layers {result['layers']} width {result['width']} T={result['time_steps']} "
        f"batch {result['batch_size']}"
    )
    print(f"{'arm':8s} {'step ms':>9s} {'temp MiB':>9s} {'args MiB':>9s} {'total MiB':>10s} {'params':>9s}")
    for name, m in result["arms"].items():
        step_ms = f"{1e3 * m['step_s']:9.2f}" if m["step_s"] is not None else f"{'-':>9s}"
        print(
            f"{name:8s} {step_ms} {m['temp_bytes'] / 2**20:9.2f} {m['argument_bytes'] / 2**20:9.2f} "
            f"{m['memory_bytes'] / 2**20:10.2f} {m['num_params']:9d}"
        )
    r = result["ratio_snn2ann_over_bptt"]
    if r["step_time"] is not None:
        print(
            f"SNN2ANN / BPTT: step time {r['step_time']:.3f}x (median of paired ratios "
            f"{r['step_time_median_of_pairs']:.3f}x)"
        )
    print(
        f"SNN2ANN / BPTT: memory (temp + args) {r['memory']:.3f}x, temp only {r['temp_memory']:.3f}x   "
        f"(paper: 0.377x time, 0.27x memory); load {result['load_before']} -> {result['load_after']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="digits,cifar", help="comma-separated: digits, fashion_mnist, cifar")
    parser.add_argument("--time-steps", default="4", help="T, or a comma-separated list of T (e.g. 2,4,8,16)")
    parser.add_argument("--digits-batch", type=int, default=64)
    parser.add_argument("--cifar-width", type=int, default=16, help="64 = the paper's VGG-13")
    parser.add_argument("--cifar-batch", type=int, default=32, help="512 in the paper")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--membrane-dropout", type=float, default=None, help="override the SNN branch's membrane dropout (official 0.5)"
    )
    parser.add_argument("--memory-only", action="store_true", help="compile both arms and report memory; no steps")
    parser.add_argument(
        "--cpu-convolutions",
        choices=("ynn", "eigen"),
        default="ynn",
        help="XLA:CPU convolutions: ynn (XLA's default) or eigen (what launch.py turns on for training)",
    )
    parser.add_argument("--json", default="", help="also write the results to this file")
    parser.add_argument("--save", default="", help="write benchmarks/results/SAVE.json (command, commit, machine)")
    args = parser.parse_args()
    try:
        time_steps = [int(t) for t in args.time_steps.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--time-steps={args.time_steps!r}: give integers, e.g. 4 or 2,4,8,16")
    cases = [c for c in args.cases.split(",") if c]
    for case in cases:
        if case not in ("digits", "fashion_mnist", "cifar"):
            parser.error(f"unknown case {case!r}; choose from digits, fashion_mnist, cifar")
    if args.cpu_convolutions == "eigen" and not runtime.use_eigen_convolutions():
        parser.error("--cpu-convolutions=eigen: could not switch XLA:CPU to Eigen convolutions (see snnjax.runtime)")
    load_before = _results.load()
    print(f"devices: {jax.devices()}")
    results = []
    for case in cases:
        for t in time_steps:
            results.append(run_case(case, t, args))
            _print(results[-1])
            if args.save:  # after every result, so that a long sweep stopped early keeps what it measured
                values = {"cpu_convolutions": args.cpu_convolutions, "results": results}
                print(f"wrote {_results.write(args.save, values, load_before)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"devices": str(jax.devices()), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
