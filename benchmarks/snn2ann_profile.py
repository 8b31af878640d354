"""Where the time of the SNN2ANN and BPTT train steps goes: a per-op profile of both compiled steps.

    python benchmarks/snn2ann_profile.py --time-steps 4 --steps 2 --save snn2ann_profile_T4

Builds both arms exactly as ``snn2ann_vs_baseline.py`` does (same net, batch, optimizer), runs
``--warmup`` steps, then ``--steps`` steps of each arm (interleaved) under ``jax.profiler.trace``.
XLA:CPU records one trace event per executed thunk (one HLO instruction of the optimised module:
a convolution, a fusion, a while loop, a copy, ...), so the trace gives the wall time of every
op. Each op is put in a category from its HLO instruction (shape, kind) and its ``op_name``
metadata (the jax source path: ``jvp(...)`` = forward, ``transpose(jvp(...))`` = backward):

- ``conv fwd, batch B*T``: forward convolutions over all time steps at once (SNN2ANN's SNN
  branch; every forward convolution of BPTT);
- ``conv fwd, batch B``: SNN2ANN's ANN-branch forward convolutions (and its SNN branch's first
  layer, whose static image is convolved once);
- ``conv input grad`` / ``conv kernel grad``: backward convolutions (a kernel gradient's output
  has the kernel's spatial size ``k x k``);
- ``neuron time loop``: the IF/LIF recursion over T (``while`` loops and what runs inside them,
  and the unrolled neuron ops), forward and backward;
- ``layout copies``: ``copy`` / ``transpose`` ops outside the time loop;
- ``optimizer``: ops whose ``op_name`` names optax (in practice none: optax's jitted update
  carries no such name, so the optimizer's elementwise ops land in ``other elementwise fwd``);
- ``other elementwise fwd`` / ``other elementwise bwd``: the rest (BN, pooling, mapping units,
  loss, ATA, dropout masks, the optimizer update) by direction.

Times are per step, in ms: the sum of each category's op times (exclusive of ops nested inside
them), divided by ``--steps``; ``step`` is the wall time of the profiled steps. XLA:CPU may run
independent thunks concurrently, so the categories can sum to a little more than the step.
``--save NAME`` writes ``benchmarks/results/NAME.json`` (:mod:`benchmarks._results`), with
XLA's FLOP count per arm (``compiled.cost_analysis()``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

import jax
import ml_collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _results  # noqa: E402
import snn2ann_vs_baseline as bench  # noqa: E402

from snnjax import models
from snnjax.methods import snn2ann
from snnjax.train import steps

CATEGORIES = (
    "conv fwd, batch B*T",
    "conv fwd, batch B",
    "conv input grad",
    "conv kernel grad",
    "neuron time loop",
    "layout copies",
    "optimizer",
    "other elementwise fwd",
    "other elementwise bwd",
)
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+) = (\S+?)(?:\{[^}]*\})? (\w[\w\-]*)\(")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+) .*\{\s*$")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
_SHAPE = re.compile(r"\[([0-9,]*)\]")


def instructions(hlo_text: str) -> dict[str, tuple[str, list[int], str]]:
    """``{instruction name: (opcode, output dims, op_name metadata)}`` of every computation of a module.

    A fusion that contains a convolution (XLA:CPU's YNNPACK fusions of a convolution with its
    neighbours) is reported as that ``convolution``, with the convolution's output dims and, when
    the fusion has none of its own, the convolution's ``op_name``."""
    raw, convs_in = {}, {}
    computation = ""
    for line in hlo_text.splitlines():
        c = _COMPUTATION.match(line)
        if c and " = " not in line:
            computation = c[1]
            continue
        m = _INSTR.match(line)
        if not m:
            continue
        shape = _SHAPE.search(m[2])
        dims = [int(d) for d in shape[1].split(",") if d] if shape else []
        op = _OP_NAME.search(line)
        calls = _CALLS.search(line)
        raw[m[1]] = (m[3], dims, op[1] if op else "", calls[1] if calls else "")
        if m[3] == "convolution":
            convs_in.setdefault(computation, (dims, op[1] if op else ""))
    out = {}
    for name, (opcode, dims, op_name, calls) in raw.items():
        if opcode == "fusion" and calls in convs_in:
            conv_dims, conv_op = convs_in[calls]
            out[name] = ("convolution", conv_dims, op_name or conv_op)
        else:
            out[name] = (opcode, dims, op_name)
    return out


def category(opcode: str, dims: list[int], op_name: str, batch: int, time_steps: int, kernel: int = 3) -> str:
    """The :data:`CATEGORIES` entry of one HLO instruction (``dims``: its output shape)."""
    backward = "transpose(" in op_name
    if opcode == "convolution":
        # A kernel gradient's output is the kernel: k x k adjacent (HWIO, or OHWI-like for the
        # split formulation). No activation of this net is k x k (CIFAR VGG: 32, 16, 8, 4, 2).
        if len(dims) == 4 and (dims[0] == dims[1] == kernel or dims[1] == dims[2] == kernel):
            return "conv kernel grad"
        if backward:
            return "conv input grad"
        return "conv fwd, batch B*T" if dims and dims[0] == batch * time_steps else "conv fwd, batch B"
    if opcode == "while" or "/while" in op_name or "neuron" in op_name or "/lif" in op_name:
        return "neuron time loop"
    if any(s in op_name for s in ("optax", "adam", "apply_gradients", "add_decayed_weights")):
        return "optimizer"
    return "other elementwise bwd" if backward else "other elementwise fwd"


def _thunk_category(name: str, info: tuple[str, list[int], str], batch: int, time_steps: int) -> str:
    opcode, dims, op_name = info
    if (opcode in ("copy", "transpose") or name.startswith(("transpose_copy", "copy"))) and "neuron" not in op_name:
        return "layout copies"
    return category(opcode, dims, op_name, batch, time_steps)


def exclusive_times(events: list[dict], names: set[str]) -> dict[str, float]:
    """Total exclusive duration (microseconds) of each thunk event named in ``names``: the time of
    thunk events nested inside it on the same thread (a while loop's body) is subtracted."""
    by_tid = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("name") in names:
            by_tid[e["tid"]].append(e)
    total: dict[str, float] = collections.Counter()
    for evs in by_tid.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[tuple[float, str]] = []  # (end, name) of the enclosing events
        for e in evs:
            while stack and e["ts"] >= stack[-1][0] - 1e-3:
                stack.pop()
            if stack:
                total[stack[-1][1]] -= e["dur"]
            total[e["name"]] += e["dur"]
            stack.append((e["ts"] + e["dur"], e["name"]))
    return dict(total)


def profile_arms(arms: dict[str, bench.Arm], n_steps: int, batch: int, time_steps: int) -> dict[str, dict]:
    """Per arm: ``step_ms`` (median wall of the profiled steps), ms per step per category, FLOPs."""
    out = {}
    for name, arm in arms.items():
        infos = instructions(arm.compiled.as_text())
        with tempfile.TemporaryDirectory() as tmp:
            arm.times = []
            with jax.profiler.trace(tmp, create_perfetto_trace=True):
                for _ in range(n_steps):
                    arm.step()
            (path,) = glob.glob(os.path.join(tmp, "**", "perfetto_trace.json.gz"), recursive=True)
            with gzip.open(path) as f:
                trace = json.load(f)
        events = trace["traceEvents"] if isinstance(trace, dict) else trace
        excl = exclusive_times(events, set(infos))
        cats: dict[str, float] = {c: 0.0 for c in CATEGORIES}
        top: dict[str, float] = {}
        for op, us in excl.items():
            cats[_thunk_category(op, infos[op], batch, time_steps)] += us / 1e3 / n_steps
            top[op] = us / 1e3 / n_steps
        cost = arm.compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        out[name] = {
            "step_ms": 1e3 * sorted(arm.times)[len(arm.times) // 2],
            "step_times_ms": [round(1e3 * t, 1) for t in arm.times],
            "categories_ms": cats,
            "ops_ms_sum": sum(cats.values()),
            "flops": float(cost.get("flops", float("nan"))),
            "top_ops_ms": dict(sorted(top.items(), key=lambda kv: -kv[1])[:25]),
            "top_ops_info": {
                op: [_thunk_category(op, infos[op], batch, time_steps), infos[op][1], infos[op][2][-120:]]
                for op in sorted(top, key=lambda o: -top[o])[:25]
            },
        }
    return out


@contextlib.contextmanager
def _scanned_if_neurons():
    """While active, SNN2ANN models built and traced use ``MappedIFNeuron(unroll=False)`` (the IF
    time loop as one ``lax.scan``, the code before the loop was unrolled; same spikes): the models
    module's reference to the neuron class is swapped, and restored on exit."""
    from snnjax.methods.snn2ann import layers as s2a_layers
    from snnjax.methods.snn2ann import models as s2a_models

    class ScannedIF(s2a_layers.MappedIFNeuron):
        unroll: bool = False

    s2a_models.MappedIFNeuron = ScannedIF
    try:
        yield
    finally:
        s2a_models.MappedIFNeuron = s2a_layers.MappedIFNeuron


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-steps", type=int, default=4)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2, help="profiled steps per arm")
    parser.add_argument(
        "--arms",
        default="snn2ann,bptt",
        help="from snn2ann, snn2ann_scan (IF loop as a lax.scan), bptt (the benchmark's arm: "
        "LIF loop as a lax.scan), bptt_unrolled (unroll=0, the engine's default)",
    )
    parser.add_argument("--save", default="", help="write benchmarks/results/SAVE.json")
    args = parser.parse_args()
    load_before = _results.load()
    cfg = snn2ann.model_config(width=args.width, time_steps=args.time_steps)  # VGG-13, as the benchmark's cifar case
    batch = bench._batch("cifar", args.batch, 100)
    bptt = ml_collections.ConfigDict({**cfg.to_dict(), "name": "bptt_vgg"})
    makers = {
        "snn2ann": lambda: (models.build(cfg, 100), snn2ann.make_train_step),
        "snn2ann_scan": lambda: (models.build(cfg, 100), snn2ann.make_train_step),
        "bptt": lambda: (models.build(bptt, 100), steps.make_train_step),
        # The engine's own default for BPTT nets (launch.py: unroll=0, the LIF loop unrolled);
        # the benchmark's BPTT arm keeps the snn2ann preset's unroll=1 (a lax.scan).
        "bptt_unrolled": lambda: (
            models.build(ml_collections.ConfigDict({**bptt.to_dict(), "unroll": 0}), 100),
            steps.make_train_step,
        ),
    }
    arms = {}
    for a in args.arms.split(","):
        # Arm compiles its step when built, so the swapped neuron class is in its program.
        with _scanned_if_neurons() if a == "snn2ann_scan" else contextlib.nullcontext():
            arms[a] = bench.Arm(*makers[a](), batch)
    for _ in range(args.warmup):
        for arm in arms.values():
            arm.step(record=False)
    t0 = time.time()
    prof = profile_arms(arms, args.steps, args.batch, args.time_steps)
    for name, p in prof.items():
        print(
            f"\n== {name}: step {p['step_ms']:,.0f} ms (steps {p['step_times_ms']}), ops sum {p['ops_ms_sum']:,.0f} ms, "
            f"{p['flops'] / 1e9:,.1f} GFLOP"
        )
        for c, ms in p["categories_ms"].items():
            print(f"  {c:24s} {ms:10,.1f} ms  {100 * ms / p['ops_ms_sum']:5.1f} %")
        for op, ms in list(p["top_ops_ms"].items())[:12]:
            print(f"    {op:40s} {ms:9,.1f} ms  {p['top_ops_info'][op]}")
    print(f"profiled in {time.time() - t0:.0f} s; load {load_before} -> {_results.load()}")
    if args.save:
        values = {
            "case": "cifar",
            "width": args.width,
            "batch_size": args.batch,
            "time_steps": args.time_steps,
            "steps": args.steps,
            "arms": prof,
        }
        print(f"wrote {_results.write(args.save, values, load_before)}")


if __name__ == "__main__":
    main()
