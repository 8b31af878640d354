"""Train-step time and compiled memory of the training options, side by side: LIF-scan BPTT, PSN, TET, SLTT.

    python benchmarks/training_options.py                       # the CPU preset, T = 4, 8, 16, every arm
    python benchmarks/training_options.py --T 4 --arms lif,sltt --rounds 2 --steps 2 --save NAME

Each arm is the student step of a preset (default ``configs/idsnn.py:fashion_mnist_60k``: its
Spiking ResNet-18, width, batch, and Hinton KD from its ResNet-34 teacher) with one training option
set, built as the launcher builds it (:func:`preset_step.build_step`: ``steps.make_train_step``,
the SLTT step for ``train.through_time="sltt"``, the TET objective for ``train.loss="tet"``):

    lif        the preset as it is: BPTT through the LIF ``lax.scan`` (fully unrolled, ``model.unroll=0``)
    psn        ``model.neuron=psn`` (full PSN: a learned T x T time weight, no loop over time), BPTT
    psn_tet    ``psn`` with ``train.loss=tet`` (per-time-step CE + MSE, KD on the time-averaged logits)
    sltt       LIF with ``train.through_time=sltt`` (a scan over t of one-step gradients; memory flat in T)
    sltt_unroll  ``sltt`` with ``train.sltt_unroll=True`` (the time loop unrolled: XLA:CPU's loops are slow)
    lif_fused  LIF with ``model.lif_impl=fused`` (one custom VJP over the time loop)

For each T (``--T``), every arm is jitted (the state donated, as ``snnjax.train.loop`` does),
lowered and compiled on random inputs of the dataset's shape: compile time, and XLA's
``memory_analysis()`` (``temp`` = the step's intermediates, ``argument``, ``output``, ``alias``;
``memory`` = temp + argument + output - alias). These are XLA's buffer assignment on this machine,
not a measured peak, and are deterministic. Then ``--rounds`` rounds of ``--steps`` timed steps per
arm (after ``--warmup`` untimed ones), the arms taking turns round by round (the order rotated each
round) so that they share whatever load the machine has: the median wall and CPU time per step
(``_timing.timed_steps``), and the ratios to the ``lif`` arm at the same T (of the medians, and the
median of the per-round ratios). CPU time is all threads of this process, less sensitive to load.

One JSON line per (arm, T) measurement, then a summary table. ``--save NAME`` writes
``benchmarks/results/NAME.json`` (:mod:`_results`; ``values.records`` the lines), rewritten after
every T. Launched as ``launch.py`` runs on CPU: Eigen convolutions (``snnjax.runtime``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _path in (ROOT, HERE):  # this checkout's snnjax, and benchmarks/'s modules
    if _path not in sys.path:
        sys.path.insert(0, _path)

from snnjax import runtime  # noqa: E402

runtime.use_eigen_convolutions()  # as launch.py; before jax's backend starts

import _results  # noqa: E402
import _timing  # noqa: E402
import preset_step  # noqa: E402
import quoted  # noqa: E402

PRESET = "configs/idsnn.py:fashion_mnist_60k"
# Each arm: the config overrides it applies to the preset (keys as on launch.py's command line).
ARMS: dict[str, dict[str, Any]] = {
    "lif": {},
    "psn": {"model.neuron": "psn"},
    "psn_tet": {"model.neuron": "psn", "train.loss": "tet"},
    "sltt": {"train.through_time": "sltt"},
    "sltt_unroll": {"train.through_time": "sltt", "train.sltt_unroll": True},
    "lif_fused": {"model.lif_impl": "fused"},
}
BASELINE = "lif"
MEMORY_FIELDS = ("temp_bytes", "argument_bytes", "output_bytes", "alias_bytes", "memory_bytes")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=PRESET, help="configs/<file>.py[:preset] (default: %(default)s)")
    p.add_argument("--T", default="4,8,16", help="time steps, comma-separated (default: %(default)s)")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {list(ARMS)}; lif is always run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the arms")
    p.add_argument("--steps", type=int, default=2, help="timed steps per arm and round")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per arm before the first round")
    p.add_argument("--batch", type=int, default=0, help="batch size (default: the preset's data.batch_size)")
    p.add_argument("--width", type=int, default=0, help="student width (default: the preset's model.width)")
    p.add_argument("--teacher-width", type=int, default=0, help="KD teacher width (default: the preset's)")
    p.add_argument("--memory-only", action="store_true", help="compile and report memory; no steps")
    p.add_argument("--save", default="", help="write benchmarks/results/SAVE.json (command, commit, machine)")
    args = p.parse_args(argv)
    try:
        args.T = [int(t) for t in str(args.T).split(",") if t.strip()]
    except ValueError:
        p.error(f"--T={args.T!r}: give integers, e.g. 4 or 4,8,16")
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        p.error(f"--arms: unknown {unknown}; choose from {list(ARMS)}")
    args.arms = [BASELINE] + [a for a in arms if a != BASELINE]  # the ratios' denominator first
    return args


def arm_config(spec: str, arm: str, time_steps: int, width: int = 0, teacher_width: int = 0):
    """The preset's config with ``arm``'s overrides at ``time_steps``, validated as ``launch.py`` validates it."""
    from snnjax import config as config_lib

    config = preset_step._load_config(ROOT, spec)
    config.model.time_steps = int(time_steps)
    if width:
        config.model.width = int(width)
    if teacher_width and "teacher" in config:
        config.teacher.model.width = int(teacher_width)
    for key, value in ARMS[arm].items():
        section, name = key.split(".")
        config[section][name] = value
    config_lib.validate(config)
    return config


class Arm:
    """One arm's compiled step and its state, stepped one call at a time."""

    def __init__(self, name: str, config, batch_size: int = 0):
        import jax

        self.name, self.config = name, config
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON lines
            built = preset_step.build_step(config, batch_size or None)
        self.state, self.batch, self.teacher = built.state, built.batch, built.teacher_variables
        self.kd, self.batch_size = built.kd, built.batch_size
        self.num_params = int(sum(p.size for p in jax.tree.leaves(self.state.params)))
        t0 = time.perf_counter()
        jitted = jax.jit(built.train_step, donate_argnums=0)  # as loop.py: the state updated in place
        self.compiled = jitted.lower(self.state, self.batch, self.teacher).compile()
        self.compile_s = time.perf_counter() - t0
        mem = self.compiled.memory_analysis()
        self.memory = {
            "temp_bytes": int(mem.temp_size_in_bytes),
            "argument_bytes": int(mem.argument_size_in_bytes),
            "output_bytes": int(mem.output_size_in_bytes),
            "alias_bytes": int(mem.alias_size_in_bytes),
        }
        m = self.memory
        m["memory_bytes"] = m["temp_bytes"] + m["argument_bytes"] + m["output_bytes"] - m["alias_bytes"]
        self.rounds: list[dict[str, list[float]]] = []
        self.loss = float("nan")

    def one_step(self) -> float:
        self.state, metrics = self.compiled(self.state, self.batch, self.teacher)
        self.loss = float(metrics["loss"])  # host sync
        return self.loss

    def run_round(self, steps: int, warmup: int = 0) -> None:
        wall, cpu, _ = _timing.timed_steps(self.one_step, warmup, steps)
        if steps:
            self.rounds.append({"wall": wall, "cpu": cpu})

    def record(self, time_steps: int) -> dict[str, Any]:
        wall = [t for r in self.rounds for t in r["wall"]]
        cpu = [t for r in self.rounds for t in r["cpu"]]
        model = self.config.model
        return {
            "arm": self.name,
            "T": int(time_steps),
            "overrides": ARMS[self.name],
            "neuron": model.neuron,
            "lif_impl": model.get("lif_impl", "scan"),
            "loss": self.config.train.get("loss", "ce"),
            "through_time": self.config.train.get("through_time", "bptt"),
            "width": int(model.width),
            "batch": self.batch_size,
            "kd": self.kd,
            "num_params": self.num_params,
            "compile_s": round(self.compile_s, 2),
            **self.memory,
            "step_ms_median": round(1e3 * statistics.median(wall), 1) if wall else None,
            "cpu_ms_median": round(1e3 * statistics.median(cpu), 1) if cpu else None,
            "step_ms": [round(1e3 * t, 1) for t in wall],
            "round_step_ms": [round(1e3 * statistics.median(r["wall"]), 1) for r in self.rounds],
            "final_loss": None if self.loss != self.loss else round(self.loss, 4),
            "load1": round(os.getloadavg()[0], 2),
        }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def add_ratios(records: list[dict[str, Any]]) -> None:
    """``vs_lif`` of each record: its memory and times over the ``lif`` record's at the same T."""
    base = {r["T"]: r for r in records if r["arm"] == BASELINE}
    for r in records:
        b = base.get(r["T"])
        if b is None:
            continue
        rounds = [x / y for x, y in zip(r["round_step_ms"], b["round_step_ms"]) if y]
        r["vs_lif"] = {
            "temp_memory": _ratio(r["temp_bytes"], b["temp_bytes"]),
            "memory": _ratio(r["memory_bytes"], b["memory_bytes"]),
            "step_time": _ratio(r["step_ms_median"], b["step_ms_median"]),
            "step_time_median_of_rounds": round(statistics.median(rounds), 3) if rounds else None,
            "cpu_time": _ratio(r["cpu_ms_median"], b["cpu_ms_median"]),
            "compile_time": _ratio(r["compile_s"], b["compile_s"]),
        }


def measure(time_steps: int, args: argparse.Namespace, log=None) -> list[dict[str, Any]]:
    """Every arm of ``args.arms`` at ``time_steps``: compiled, then timed in interleaved rounds; one record each."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    arms = []
    for name in args.arms:
        config = arm_config(args.config, name, time_steps, args.width, args.teacher_width)
        arms.append(Arm(name, config, args.batch))
        log(
            f"[T={time_steps}] {name}: compiled in {arms[-1].compile_s:.1f} s, temp {arms[-1].memory['temp_bytes']:,} B"
        )
    if not args.memory_only:
        for arm in arms:
            arm.run_round(0, args.warmup)
        for i in range(args.rounds):
            order = arms[i % len(arms) :] + arms[: i % len(arms)]  # rotated, so no arm always goes first
            for arm in order:
                arm.run_round(args.steps)
            log(
                f"[T={time_steps}] round {i + 1}/{args.rounds}: "
                + ", ".join(f"{a.name} {1e3 * statistics.median(a.rounds[-1]['wall']):.0f} ms" for a in arms)
            )
    records = [arm.record(time_steps) for arm in arms]
    add_ratios(records)
    return records


def table(records: list[dict[str, Any]]) -> list[str]:
    """The summary as Markdown table rows (RESULTS.md's and docs' table: :func:`quoted.training_options_rows`)."""
    return quoted.training_options_rows(records)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import jax

    args = parse_args(argv)
    load_before = _results.load()
    settings = {
        "config": args.config,
        "T": args.T,
        "arms": args.arms,
        "rounds": args.rounds,
        "steps": args.steps,
        "warmup": args.warmup,
        "batch": args.batch or None,
        "width": args.width or None,
        "teacher_width": args.teacher_width or None,
        "memory_only": args.memory_only,
        "eigen_convolutions": runtime.eigen_convolutions(),
        "devices": str(jax.devices()),
    }
    records: list[dict[str, Any]] = []
    for t in args.T:
        new = measure(t, args)
        for r in new:
            print(json.dumps(r), flush=True)
        records += new
        if args.save:  # after every T: a sweep stopped early keeps what it measured
            _results.write(args.save, {"settings": settings, "records": records, "table": table(records)}, load_before)
    rows = table(records)
    print("\n".join(rows), flush=True)
    values = {"settings": settings, "records": records, "table": rows}
    if args.save:
        print(f"wrote {_results.write(args.save, values, load_before)}", file=sys.stderr)
    return values


if __name__ == "__main__":
    main()
