"""snnjax vs SpikingJelly training-step speed, side by side on this machine.

Every measurement is a fresh subprocess (``train_step.py`` under the snnjax interpreter,
``spikingjelly_step.py`` under the SpikingJelly venv's), with the same depth / width / T / batch /
dtype. The frameworks are interleaved (A B A B ... for ``--rounds`` rounds) so that load from
other processes on a shared machine hits both alike; the tables report medians over rounds.

    python benchmarks/compare.py                       # reduced matrix, see --help
    python benchmarks/compare.py --matrix full         # ResNet-18/34, T 1..8, batch 32..128, fp32+bf16
    python benchmarks/compare.py --scaling-only --scaling-width 16   # T x batch table + ./scaling.png
    python benchmarks/compare.py --interleave step --time-steps 4,1 --batches 32 --steps 12 \
        --sj-variants own,zoo,own+cl,zoo+cl                        # step-by-step interleaving

Outputs: a Markdown table on stdout (``ratio`` = the fastest SpikingJelly variant's step time /
this step time, so > 1 means faster than SpikingJelly at its best) and, with scaling, the PNG
``--plot`` (default ``./scaling.png``; its title carries the load average, and no such figure is
kept in the repo).

``--save NAME`` writes ``benchmarks/results/NAME.json`` (command, commit, machine, date, load;
:mod:`benchmarks._results`), rewritten after every configuration, with every configuration's per-impl
medians, per-step times and the ratios against the fastest SpikingJelly variant (``values.results``)
and every measurement process's raw record, failures included (``values.records``): the file
docs/running.md's SpikingJelly sentence is checked against (``benchmarks/quoted.py``). Without ``--save``
nothing is written.

``--interleave step`` keeps one process per implementation alive and steps them in turn (A B C,
C B A, ...): on a shared machine the frameworks then see the same load, step by step.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _results  # noqa: E402  (benchmarks/_results.py, next to this script)

DEFAULT_SJ_PYTHON = os.environ.get("SJ_PYTHON", "/work/sjvenv/bin/python")

# Named snnjax variants -> train_step.py flags.
VARIANTS = {
    "scan": [],
    "unroll": ["--unroll", "0"],
    "fused": ["--lif-impl", "fused"],
    "fused+unroll": ["--lif-impl", "fused", "--unroll", "0"],
    "matmul": ["--conv-grad", "matmul"],
    "fused+unroll+matmul": ["--lif-impl", "fused", "--unroll", "0", "--conv-grad", "matmul"],
    "fused+unroll+matmul+remat": ["--lif-impl", "fused", "--unroll", "0", "--conv-grad", "matmul", "--remat"],
    "fused+unroll+remat": ["--lif-impl", "fused", "--unroll", "0", "--remat"],
    "scan+remat": ["--remat"],
    "split": ["--conv-grad", "split"],
    "eigen": ["--cpu-conv", "eigen"],
    "eigen+unroll": ["--cpu-conv", "eigen", "--unroll", "0"],
    "eigen+fused+unroll": ["--cpu-conv", "eigen", "--lif-impl", "fused", "--unroll", "0"],
    "eigen+unroll+remat": ["--cpu-conv", "eigen", "--unroll", "0", "--remat"],
    "unroll+split": ["--unroll", "0", "--conv-grad", "split"],
    # Eigen convolutions + YNNPACK for elementwise fusions (multi-threaded LIF/BN arithmetic); same numbers
    "eigen+unroll+ynn_eltwise": [
        "--unroll",
        "0",
        "--xla-flags=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution,+eltwise",
    ],
    "eigen+unroll+ynn_eltwise_reduce": [
        "--unroll",
        "0",
        "--xla-flags=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution,+eltwise,+reduce",
    ],
    "fused+unroll+split": ["--lif-impl", "fused", "--unroll", "0", "--conv-grad", "split"],
}
# Named SpikingJelly variants -> spikingjelly_step.py flags (labels "sj:<name>" in the tables).
SJ_VARIANTS = {
    "own": [],  # the model written in spikingjelly_step.py
    "zoo": ["--model", "zoo"],  # SpikingJelly's model zoo spiking_resnet, CIFAR stem
    "own+cl": ["--channels-last"],
    "zoo+cl": ["--model", "zoo", "--channels-last"],
    "own+compile": ["--compile", "default"],
    "zoo+compile": ["--model", "zoo", "--compile", "default"],
    "zoo+cl+compile": ["--model", "zoo", "--channels-last", "--compile", "default"],
    "own+threads1": ["--threads", "1"],
}
MATRICES = {
    # What this 2-core machine can measure in minutes.
    "reduced": dict(depths=[18], time_steps=[1, 2, 4], batches=[32], dtypes=["float32"]),
    "full": dict(depths=[18, 34], time_steps=[1, 2, 4, 6, 8], batches=[32, 64, 128], dtypes=["float32", "bfloat16"]),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--matrix", choices=sorted(MATRICES), default="reduced")
    p.add_argument("--depths", type=_ints, help="override the matrix, e.g. 18,34")
    p.add_argument("--time-steps", type=_ints, help="override the matrix, e.g. 1,2,4")
    p.add_argument("--batches", type=_ints, help="override the matrix, e.g. 32")
    p.add_argument("--dtypes", type=_strs, help="override the matrix, e.g. float32,bfloat16")
    p.add_argument("--width", type=int, default=64)
    p.add_argument(
        "--variants",
        type=_strs,
        default=["scan", "eigen+unroll"],
        help=f"snnjax variants to time, from {sorted(VARIANTS)}",
    )
    p.add_argument("--no-spikingjelly", action="store_true", help="time only snnjax variants")
    p.add_argument(
        "--sj-variants",
        type=_strs,
        default=["own", "zoo"],
        help=f"SpikingJelly variants to time, from {sorted(SJ_VARIANTS)}; 'vs SJ' is against the "
        "fastest of them in each configuration",
    )
    p.add_argument("--rounds", type=int, default=2, help="interleaved A B rounds per configuration")
    p.add_argument(
        "--interleave",
        choices=("process", "step"),
        default="process",
        help="process: one subprocess per measurement, A B then B A (--rounds); step: one serving "
        "process per impl, all alive, stepped in turn (A B C, then C B A, ...) for --steps "
        "rounds: the frameworks alternate step by step, so load from other jobs hits them alike",
    )
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--jax-python", default=sys.executable)
    p.add_argument("--sj-python", default=DEFAULT_SJ_PYTHON)
    p.add_argument(
        "--save", default="", help="write benchmarks/results/SAVE.json (command, commit, machine, raw records)"
    )
    p.add_argument("--scaling", action="store_true", help="also run the T x batch scaling table + plot")
    p.add_argument("--scaling-only", action="store_true")
    p.add_argument("--scaling-width", type=int, default=16)
    p.add_argument("--scaling-time-steps", type=_ints, default=[1, 2, 4])
    p.add_argument("--scaling-batches", type=_ints, default=[8, 16, 32])
    p.add_argument(
        "--plot",
        default="scaling.png",
        help="where --scaling writes its figure (not kept in the repo: a figure of a loaded machine misleads)",
    )
    args = p.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown --variants {unknown}; choose from {sorted(VARIANTS)}")
    unknown = [v for v in args.sj_variants if v not in SJ_VARIANTS]
    if unknown:
        p.error(f"unknown --sj-variants {unknown}; choose from {sorted(SJ_VARIANTS)}")
    return args


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def _strs(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


def run_one(cmd: list[str], env: dict | None = None) -> dict:
    """Run one benchmark subprocess and parse its JSON line (or record its failure)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parent)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode or not lines:
        return dict(error=f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}", cmd=" ".join(cmd))
    return json.loads(lines[-1])


def shape_flags(depth: int, width: int, t: int, batch: int, dtype: str, args: argparse.Namespace) -> list[str]:
    return [
        "--depth",
        str(depth),
        "--width",
        str(width),
        "--time-steps",
        str(t),
        "--batch",
        str(batch),
        "--dtype",
        dtype,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]


def measure_config(depth, width, t, batch, dtype, args, variants, with_sj) -> dict[str, list[dict]]:
    """Interleaved rounds over the frameworks/variants of one shape; ``{label: [records]}``."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    flags = shape_flags(depth, width, t, batch, dtype, args)
    jobs = [(v, [args.jax_python, str(HERE / "train_step.py"), *flags, *VARIANTS[v]]) for v in variants]
    if with_sj:
        sj_variants = [v for v in args.sj_variants if width == 64 or not v.startswith("zoo")]
        jobs += [
            (SJ_PREFIX + v, [args.sj_python, str(HERE / "spikingjelly_step.py"), *flags, *SJ_VARIANTS[v]])
            for v in sj_variants
        ]
    if args.interleave == "step":
        results = measure_stepwise(jobs, env, args, f"[{depth} w{width} T{t} B{batch} {dtype}]")
        args.raw_records.extend(rec for recs in results.values() for rec in recs)
        return results
    results: dict[str, list[dict]] = {label: [] for label, _ in jobs}
    for r in range(args.rounds):
        order = jobs if r % 2 == 0 else jobs[::-1]  # A B, then B A: neither always goes first
        for label, cmd in order:
            rec = run_one(cmd, env)
            rec.update(label=label, round=r, load1=os.getloadavg()[0], date=time.strftime("%Y-%m-%d %H:%M"))
            results[label].append(rec)
            args.raw_records.append(rec)
            status = rec.get("error", "")[:200] or f"{rec['step_s']:.2f}s/step cpu {rec['cpu_s']:.2f}s"
            print(f"  [{depth} w{width} T{t} B{batch} {dtype}] {label} r{r}: {status}", file=sys.stderr, flush=True)
    return results


def measure_stepwise(jobs, env, args, tag) -> dict[str, list[dict]]:
    """All impls alive at once (``--serve``), one timed step each in turn, order reversed every round.

    Each process is started and warmed up alone (compilation does not overlap another's timing).
    Returns one record per impl, its ``step_times_s`` / ``cpu_times_s`` the per-step times, and
    ``round_ratios`` (this impl's step / the first impl's step in the same round) for the table.
    """
    procs = {}
    results: dict[str, list[dict]] = {}
    for label, cmd in jobs:
        proc = subprocess.Popen(
            cmd + ["--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=HERE.parent,
            bufsize=1,
        )
        line = proc.stdout.readline()
        while line and line.strip() != "READY":
            line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read()[-600:]
            results[label] = [dict(error=f"exit {proc.wait()}: {err}", cmd=" ".join(cmd), label=label)]
            continue
        procs[label] = proc
        print(f"  {tag} {label}: ready", file=sys.stderr, flush=True)
    labels = list(procs)
    per_step: dict[str, list[tuple[float, float, float]]] = {label: [] for label in labels}
    for r in range(args.steps):
        for label in labels if r % 2 == 0 else labels[::-1]:
            time.sleep(0.3)  # let the previous process's worker threads go idle
            proc = procs[label]
            proc.stdin.write("step\n")
            proc.stdin.flush()
            rec = json.loads(proc.stdout.readline())
            per_step[label].append((rec["wall"], rec["cpu"], os.getloadavg()[0]))
        print(
            f"  {tag} round {r}: " + ", ".join(f"{l} {per_step[l][-1][0]:.2f}s" for l in labels),
            file=sys.stderr,
            flush=True,
        )
    for label in labels:
        proc = procs[label]
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=600)
        lines = [l for l in out.splitlines() if l.startswith("{") and "framework" in l]
        if proc.returncode or not lines:
            results[label] = [dict(error=f"exit {proc.returncode}: {err.strip()[-600:]}", label=label)]
            continue
        rec = json.loads(lines[-1])
        walls = [w for w, _, _ in per_step[label]]
        first = [w for w, _, _ in per_step[labels[0]]]
        rec.update(
            label=label,
            round=0,
            interleave="step",
            step_times_s=walls,
            cpu_times_s=[c for _, c, _ in per_step[label]],
            step_s=statistics.median(walls),
            cpu_s=statistics.median(c for _, c, _ in per_step[label]),
            load1=statistics.median(l for _, _, l in per_step[label]),
            round_ratios=[a / b for a, b in zip(walls, first)],
            date=time.strftime("%Y-%m-%d %H:%M"),
        )
        results[label] = [rec]
    return results


def summarise(results: dict[str, list[dict]]) -> dict[str, dict]:
    """Median step time, CPU time, throughput and memory per label (errors dropped); with
    ``--interleave step`` also the per-step wall times ``step_times_s`` (seconds)."""
    out = {}
    for label, recs in results.items():
        ok = [r for r in recs if "error" not in r]
        if not ok:
            out[label] = dict(error=recs[0]["error"] if recs else "not run")
            continue
        step = statistics.median(r["step_s"] for r in ok)
        out[label] = dict(
            step_s=step,
            cpu_s=statistics.median(r["cpu_s"] for r in ok),
            images_T_per_s=ok[0]["batch"] * ok[0]["T"] / step,
            rss_mb=max(r["max_rss_bytes"] for r in ok) / 2**20,
            xla_mb=(ok[0]["xla_temp_bytes"] + ok[0]["xla_arg_bytes"]) / 2**20 if "xla_temp_bytes" in ok[0] else None,
            compile_s=statistics.median(r["compile_s"] for r in ok) if "compile_s" in ok[0] else None,
            load1=statistics.median(r["load1"] for r in ok),
            n=len(ok),
            versions={k: ok[0][k] for k in ("jax", "torch", "spikingjelly") if k in ok[0]},
        )
        if "step_times_s" in ok[0]:
            out[label]["step_times_s"] = ok[0]["step_times_s"]
    return out


SJ_PREFIX = "sj:"


def best_spikingjelly(summary: dict[str, dict]) -> dict:
    """The fastest SpikingJelly variant of one configuration (``{}`` if none ran)."""
    sj = [s for label, s in summary.items() if label.startswith(SJ_PREFIX) and "step_s" in s]
    return min(sj, key=lambda s: s["step_s"]) if sj else {}


def print_table(rows: list[tuple[tuple, dict[str, dict]]]) -> None:
    print(
        "| depth | width | T | batch | dtype | impl | step s (median) | CPU s/step | images*T/s | "
        "vs SJ (fastest SJ time / this) | peak RSS MB | XLA temp+args MB | compile s | load1 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (depth, width, t, batch, dtype), summary in rows:
        sj = best_spikingjelly(summary)
        for label, s in summary.items():
            if "error" in s:
                print(
                    f"| {depth} | {width} | {t} | {batch} | {dtype} | {label} | error: {s['error'][:80]} |" + " |" * 8
                )
                continue
            ratio = f"{sj['step_s'] / s['step_s']:.2f}x" if "step_s" in sj else "-"
            xla = f"{s['xla_mb']:.0f}" if s["xla_mb"] is not None else "-"
            comp = f"{s['compile_s']:.0f}" if s["compile_s"] is not None else "-"
            print(
                f"| {depth} | {width} | {t} | {batch} | {dtype} | {label} | {s['step_s']:.2f} | {s['cpu_s']:.2f} | "
                f"{s['images_T_per_s']:.1f} | {ratio} | {s['rss_mb']:.0f} | {xla} | {comp} | {s['load1']:.1f} |"
            )


def record_values(rows: list[tuple[tuple, dict[str, dict]]], args: argparse.Namespace) -> dict:
    """``--save``'s values: per configuration the summaries, the fastest SpikingJelly variant and
    ``speedup_vs_sj`` (its median step time / each snnjax variant's median step time; > 1 = snnjax faster);
    ``records``: every measurement process's raw record so far (the scaling grid's too), failures included."""
    results = []
    for (depth, width, t, batch, dtype), summary in rows:
        sj = best_spikingjelly(summary)
        sj_label = next((label for label, s in summary.items() if s is sj), None)
        speedup = {
            label: sj["step_s"] / s["step_s"]
            for label, s in summary.items()
            if not label.startswith(SJ_PREFIX) and "step_s" in s and "step_s" in sj
        }
        results.append(
            dict(
                depth=depth,
                width=width,
                time_steps=t,
                batch=batch,
                dtype=dtype,
                impls=summary,
                fastest_sj=sj_label,
                speedup_vs_sj=speedup,
            )
        )
    return dict(
        interleave=args.interleave,
        steps=args.steps,
        warmup=args.warmup,
        rounds=args.rounds,
        results=results,
        records=args.raw_records,
    )


def save(args: argparse.Namespace) -> None:
    """Rewrite ``--save``'s record with what is measured so far (a sweep stopped early keeps it)."""
    if args.save:
        _results.write(args.save, record_values(args.rows, args), args.load_before)


def run_matrix(args: argparse.Namespace) -> None:
    m = dict(MATRICES[args.matrix])
    for key in ("depths", "time_steps", "batches", "dtypes"):
        if getattr(args, key):
            m[key] = getattr(args, key)
    rows = args.rows
    for depth, t, batch, dtype in itertools.product(m["depths"], m["time_steps"], m["batches"], m["dtypes"]):
        key = (depth, args.width, t, batch, dtype)
        rows.append((key, summarise(measure_config(*key, args, args.variants, not args.no_spikingjelly))))
        save(args)  # after every configuration, so that a sweep stopped early keeps what it measured
    print_table(rows)
    if args.save:
        print(f"wrote {_results.RESULTS_DIR / (args.save + '.json')}")


def run_scaling(args: argparse.Namespace) -> None:
    """T x batch grid at a small width, both frameworks, table + plot of images*T/s."""
    variant = args.variants[-1]
    rows, grid = [], {}
    for t, batch in itertools.product(args.scaling_time_steps, args.scaling_batches):
        key = (18, args.scaling_width, t, batch, "float32")
        summary = summarise(measure_config(*key, args, [variant], not args.no_spikingjelly))
        rows.append((key, summary))
        grid[(t, batch)] = summary
        save(args)  # the scaling grid's raw records join values.records
    print(f"\nScaling (ResNet-18, width {args.scaling_width}, float32, snnjax variant {variant}):")
    print_table(rows)
    if args.save:
        print(f"wrote {_results.RESULTS_DIR / (args.save + '.json')}")
    plot_scaling(grid, args, variant)


def plot_scaling(grid: dict, args: argparse.Namespace, variant: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    sj_labels = [SJ_PREFIX + v for v in args.sj_variants]
    for label, style in ((variant, "-o"), *((sj, "--s") for sj in sj_labels)):
        for t in args.scaling_time_steps:
            xs = [b for b in args.scaling_batches if "step_s" in grid[(t, b)].get(label, {})]
            if not xs:
                continue
            tp = [grid[(t, b)][label]["images_T_per_s"] for b in xs]
            rss = [grid[(t, b)][label]["rss_mb"] for b in xs]
            name = "snnjax " + variant if label == variant else "SpikingJelly " + label[len(SJ_PREFIX) :]
            axes[0].plot(xs, tp, style, label=f"{name}, T={t}")
            axes[1].plot(xs, rss, style, label=f"{name}, T={t}")
    axes[0].set(xlabel="batch", ylabel="images*T / s (median step)", title="Training-step throughput")
    axes[1].set(xlabel="batch", ylabel="peak RSS (MB)", title="Peak process memory")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    loads = [s[label]["load1"] for s in grid.values() for label in s if "load1" in s[label]]
    fig.suptitle(
        f"Spiking ResNet-18 (width {args.scaling_width}), SGD step, {os.cpu_count()}-core CPU, "
        f"{args.interleave}-interleaved, load average {min(loads, default=0):.1f}-{max(loads, default=0):.1f}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.load_before = _results.load()
    args.rows, args.raw_records = [], []  # --save's summaries (matrix) and every process's raw record
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()}, {time.strftime('%Y-%m-%d %H:%M')}")
    if not args.scaling_only:
        run_matrix(args)
    if args.scaling or args.scaling_only:
        run_scaling(args)


if __name__ == "__main__":
    main()
