"""The benchmark figures README.md and docs/ quote, rendered from ``benchmarks/results/*.json``.

A quoted table in a Markdown file sits between ``<!-- quoted: NAME -->`` and ``<!-- end quoted -->``
and must equal :func:`render_table` of ``benchmarks/results/NAME.json``; a sentence quoting a
ratio must contain :func:`readme_phrase`'s text. ``tests/test_quoted_figures.py`` checks both,
so a figure that no longer matches its measurement fails the test suite. After re-running a
benchmark with ``--save NAME``::

    python benchmarks/quoted.py          # list the quoted blocks that disagree with their JSON
    python benchmarks/quoted.py --write  # re-render them in place (then fix the prose around them)

No jax import: the test runs in the normal suite without compiling anything.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
# Markdown files that quote benchmark results (relative to the repository root).
QUOTING_FILES = ("README.md", "docs/snn2ann.md", "docs/running.md", "benchmarks/RESULTS.md")
BLOCK = re.compile(r"(<!-- quoted: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- end quoted -->)", re.S)
MIB = 2**20
HEADER = (
    "| case | T | SNN2ANN step | BPTT step | time ratio (median of pairs) | SNN2ANN memory | BPTT memory "
    "| memory ratio | load (1-min, before -> after) |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)


def load(name: str) -> dict[str, Any]:
    """The record ``benchmarks/results/<name>.json``."""
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; write it with the benchmark's --save {name}")
    return json.loads(path.read_text())


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{1e3 * seconds:,.0f} ms"


def render_row(result: dict[str, Any]) -> str:
    """One table row of a ``snn2ann_vs_baseline.py`` result (step times are medians of the interleaved rounds)."""
    s2a, bptt = result["arms"]["snn2ann"], result["arms"]["bptt"]
    r = result["ratio_snn2ann_over_bptt"]
    time_ratio = "-" if r["step_time"] is None else f"{r['step_time']:.3f}x ({r['step_time_median_of_pairs']:.3f}x)"
    case = f"{result['case']}, width {result['width']}, batch {result['batch_size']}"
    return (
        f"| {case} | {result['time_steps']} | {_ms(s2a['step_s'])} | {_ms(bptt['step_s'])} | {time_ratio} "
        f"| {s2a['memory_bytes'] / MIB:,.1f} MiB | {bptt['memory_bytes'] / MIB:,.1f} MiB | {r['memory']:.3f}x "
        f"| {result['load_before'][0]:.1f} -> {result['load_after'][0]:.1f} |\n"
    )


def _footer(record: dict[str, Any], extra: str = "") -> str:
    m = record["machine"]
    return (
        f"({record['date_utc']}, commit {record['commit'][:7]}, {m['cpu']} x {m['cpu_count']}, jax {m['jax']}"
        f"{extra}: `{record['command']}`)\n"
    )


def render_table(record: dict[str, Any]) -> str:
    """The Markdown table of a record (an SNN2ANN-vs-BPTT run, a SpikingJelly comparison or an
    SNN2ANN profile: told apart by their values), with its date, commit and command."""
    values = record["values"]
    if "arms" in values:
        return render_profile(record)
    if "settings" in values:  # a training_options.py run
        return render_training_options(record)
    if values["results"] and "impls" in values["results"][0]:
        return render_spikingjelly(record)
    rows = "".join(render_row(r) for r in values["results"])
    return f"{HEADER}{rows}\n" + _footer(record, f", {values['cpu_convolutions']} convolutions")


def training_options_rows(records: list[dict[str, Any]]) -> list[str]:
    """``training_options.py``'s summary as Markdown table rows: per T (arms in measured order), memory and
    step time with their ratios to the lif arm (``vs_lif``), and compile time."""
    mib = lambda b: f"{b / MIB:,.1f}"  # noqa: E731
    x = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
    ms = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
    rows = [
        "| T | arm | temp MiB | temp vs lif | total MiB | total vs lif | step ms (median) | step vs lif "
        "| round-median ratio | CPU vs lif | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=lambda r: r["T"]):  # stable: the arms keep their order within a T
        v = r.get("vs_lif", {})
        rows.append(
            f"| {r['T']} | {r['arm']} | {mib(r['temp_bytes'])} | {x(v.get('temp_memory'))} | {mib(r['memory_bytes'])} "
            f"| {x(v.get('memory'))} | {ms(r['step_ms_median'])} | {x(v.get('step_time'))} "
            f"| {x(v.get('step_time_median_of_rounds'))} | {x(v.get('cpu_time'))} | {r['compile_s']:.1f} |"
        )
    return rows


def render_training_options(record: dict[str, Any]) -> str:
    """``training_options.py``'s summary table (memory and time ratios to the lif arm per T), with its footer."""
    s = record["values"]["settings"]
    batch = f"batch {s['batch']}" if s.get("batch") else "the preset's batch"
    extra = f", {s['config']}, {batch}, {s['rounds']} interleaved rounds of {s['steps']} step(s)"
    extra += f", load {record['load_before'][0]:.1f} -> {record['load_after'][0]:.1f}"
    return "\n".join(training_options_rows(record["values"]["records"])) + "\n\n" + _footer(record, extra)


SJ_HEADER = (
    "| T | batch | snnjax step (median) | fastest SpikingJelly step (median) | snnjax speedup (SJ time / snnjax time) "
    "| other SpikingJelly variants | snnjax / SJ peak RSS | load (1-min, median over steps) |\n"
    "|---|---|---|---|---|---|---|---|\n"
)


def _sj_speedup(result: dict[str, Any]) -> tuple[str, float]:
    """``(snnjax variant, speedup)`` of one configuration (one snnjax variant is quoted)."""
    ((label, speedup),) = result["speedup_vs_sj"].items()
    return label, speedup


def render_spikingjelly(record: dict[str, Any]) -> str:
    """``compare.py --save``'s table: per configuration snnjax's and the fastest SpikingJelly
    variant's median step times (seconds) and snnjax's speedup."""
    rows = []
    for r in record["values"]["results"]:
        label, speedup = _sj_speedup(r)
        jx, sj = r["impls"][label], r["impls"][r["fastest_sj"]]
        others = ", ".join(
            f"{k[3:]} {v['step_s']:.2f} s"
            for k, v in r["impls"].items()
            if k.startswith("sj:") and k != r["fastest_sj"] and "step_s" in v
        )
        rows.append(
            f"| {r['time_steps']} | {r['batch']} | {jx['step_s']:.2f} s ({label}) | {sj['step_s']:.2f} s "
            f"({r['fastest_sj'][3:]}) | {speedup:.2f}x | {others} | {jx['rss_mb']:,.0f} / {sj['rss_mb']:,.0f} MB "
            f"| {jx['load1']:.1f} |\n"
        )
    versions = record["values"]["results"][0]["impls"][record["values"]["results"][0]["fastest_sj"]]["versions"]
    v = record["values"]
    return (
        SJ_HEADER
        + "".join(rows)
        + "\n"
        + _footer(
            record,
            f", torch {versions['torch']}, SpikingJelly {versions['spikingjelly']}, "
            f"{v['interleave']}-interleaved, {v['steps']} timed steps each after {v['warmup']} warm-up",
        )
    )


def spikingjelly_phrase(record: dict[str, Any]) -> str:
    """docs/running.md's sentence (Performance): ``1.29x at T=4 (9.59 vs 12.34 s/step), ...`` for every configuration of
    the record, in its order (speedup = fastest SpikingJelly median step / snnjax's)."""
    parts = []
    for r in record["values"]["results"]:
        label, speedup = _sj_speedup(r)
        parts.append(
            f"{speedup:.2f}x at T={r['time_steps']} ({r['impls'][label]['step_s']:.2f} vs "
            f"{r['impls'][r['fastest_sj']]['step_s']:.2f} s/step)"
        )
    return ", ".join(parts)


PROFILE_HEADER = "| category | {} |\n|---|{}\n"


def render_profile(record: dict[str, Any]) -> str:
    """``snn2ann_profile.py --save``'s table: ms per step and % of the ops' sum per category and arm."""
    v = record["values"]
    arms = v["arms"]
    names = list(arms)
    head = PROFILE_HEADER.format(" | ".join(f"{n} ms | {n} %" for n in names), "---|---|" * len(names))
    rows = []
    for c in arms[names[0]]["categories_ms"]:
        if not any(arms[n]["categories_ms"][c] for n in names):
            continue  # a category no op fell into (optax's ops carry no optimizer name: they count as elementwise)
        cells = " | ".join(
            f"{arms[n]['categories_ms'][c]:,.0f} | {100 * arms[n]['categories_ms'][c] / arms[n]['ops_ms_sum']:.1f}"
            for n in names
        )
        rows.append(f"| {c} | {cells} |\n")
    total = " | ".join(f"{arms[n]['ops_ms_sum']:,.0f} | 100" for n in names)
    step = " | ".join(f"{arms[n]['step_ms']:,.0f} | - " for n in names)
    flops = " | ".join(f"{arms[n]['flops'] / 1e9:,.1f} | - " for n in names)
    return (
        head
        + "".join(rows)
        + f"| sum of op times | {total} |\n| step wall time (median of the profiled steps) | {step}|\n"
        + f"| XLA FLOPs (G) | {flops}|\n\n"
        + _footer(
            record,
            f", {v['case']} width {v['width']} batch {v['batch_size']} T = {v['time_steps']}, "
            f"{v['steps']} profiled steps per arm, load {record['load_before'][0]:.1f} -> {record['load_after'][0]:.1f}",
        )
    )


def find(results: list[dict[str, Any]], case: str, time_steps: int) -> dict[str, Any]:
    """The result of ``case`` at ``time_steps`` in a record's results."""
    for r in results:
        if r["case"] == case and r["time_steps"] == time_steps:
            return r
    raise KeyError(f"no {case} result at T={time_steps}")


def readme_phrase(*records: dict[str, Any], case: str = "cifar", time_steps: int = 4) -> str:
    """The README's SNN2ANN efficiency claim over one or more timed runs of the same case:
    ``CPU step time 0.XX-0.YYx and compiled memory 0.ZZZx of BPTT`` (memory: the first run's)."""
    ratios = [find(r["values"]["results"], case, time_steps)["ratio_snn2ann_over_bptt"] for r in records]
    times = sorted(f"{r['step_time']:.2f}" for r in ratios)
    span = times[0] if times[0] == times[-1] else f"{times[0]}-{times[-1]}"
    return f"CPU step time {span}x and compiled memory {ratios[0]['memory']:.3f}x of BPTT"


def fashion_mnist_phrase(record: dict[str, Any]) -> str:
    """The Fashion-MNIST net's ratios: ``step time 0.XXx and compiled memory 0.XXx of BPTT``."""
    r = find(record["values"]["results"], "fashion_mnist", 4)["ratio_snn2ann_over_bptt"]
    return f"step time {r['step_time']:.2f}x and compiled memory {r['memory']:.2f}x of BPTT"


def quickstart_phrase(record: dict[str, Any]) -> str:
    """The quick start's best test accuracy on every CPU it was measured on:
    ``best test accuracy 0.9167 (Intel ...) or 0.9389 (AMD EPYC)`` (the order of the record)."""
    values = [f"{r['best_test_accuracy']:.4f} ({r['cpu']})" for r in record["values"]["runs"]]
    return "best test accuracy " + " or ".join(values)


# Sentences (outside the tables) that quote a figure: (file, record name(s), phrase function).
PHRASES = (
    ("README.md", "snn2ann_vs_bptt_T4_unrolled", readme_phrase),
    ("docs/snn2ann.md", "snn2ann_vs_bptt_T4_unrolled", readme_phrase),
    ("docs/snn2ann.md", ("snn2ann_vs_bptt_T4", "snn2ann_vs_bptt_T4_run2"), readme_phrase),
    ("docs/fmnist_results_other_pipelines.md", "snn2ann_vs_bptt_small_nets", fashion_mnist_phrase),
    ("docs/snn2ann.md", "snn2ann_vs_bptt_small_nets", fashion_mnist_phrase),
    ("docs/running.md", "snnjax_vs_spikingjelly_cpu", spikingjelly_phrase),
    ("benchmarks/RESULTS.md", "snnjax_vs_spikingjelly_cpu", spikingjelly_phrase),
    ("README.md", "quickstart_accuracy", quickstart_phrase),
    ("docs/performance.md", "quickstart_accuracy", quickstart_phrase),
)


def phrase_of(names: str | tuple[str, ...], phrase) -> str:
    """``phrase`` of the record(s) ``names``."""
    return phrase(*(load(n) for n in ((names,) if isinstance(names, str) else names)))


def stale_blocks(text: str, skip: tuple[str, ...] | list[str] = ()) -> list[tuple[str, str, str]]:
    """``(name, quoted, rendered)`` for every quoted block of ``text`` that differs from its JSON
    (a missing JSON raises FileNotFoundError, except for the names in ``skip``)."""
    out = []
    for m in BLOCK.finditer(text):
        if m["name"] in skip:
            continue
        rendered = render_table(load(m["name"]))
        if m["body"] != rendered:
            out.append((m["name"], m["body"], rendered))
    return out


def rewrite(text: str) -> str:
    """``text`` with every quoted block whose JSON exists re-rendered from it (the others unchanged)."""

    def sub(m: re.Match) -> str:
        exists = (RESULTS_DIR / f"{m['name']}.json").exists()
        return m[1] + render_table(load(m["name"])) + m[4] if exists else m[0]

    return BLOCK.sub(sub, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="re-render the quoted blocks in place")
    args = parser.parse_args()
    for rel in QUOTING_FILES:
        path = ROOT / rel
        text = path.read_text()
        missing = [m["name"] for m in BLOCK.finditer(text) if not (RESULTS_DIR / f"{m['name']}.json").exists()]
        for name in missing:
            print(f"{rel}: block {name} has no benchmarks/results/{name}.json")
        stale = [s for s in stale_blocks(text, skip=missing)]
        for name, _, _ in stale:
            print(f"{rel}: block {name} differs from benchmarks/results/{name}.json")
        if args.write and stale:
            path.write_text(rewrite(text))
            print(f"{rel}: rewritten")
    for rel, names, phrase in PHRASES:
        want = phrase_of(names, phrase)
        if want not in (ROOT / rel).read_text():
            print(f"{rel}: does not say {want!r} ({names})")


if __name__ == "__main__":
    main()
