"""README.md and docs quote benchmark figures exactly as their benchmarks/results/*.json record them."""

import copy
import importlib.util
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("quoted", ROOT / "benchmarks" / "quoted.py")
quoted = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quoted)


@pytest.mark.parametrize("rel", quoted.QUOTING_FILES)
def test_quoted_tables_equal_their_json(rel):
    text = (ROOT / rel).read_text()
    stale = quoted.stale_blocks(text)
    assert not stale, f"{rel}: re-render with `python benchmarks/quoted.py --write`: {[s[0] for s in stale]}"


@pytest.mark.parametrize("rel, names, phrase", quoted.PHRASES)
def test_quoted_sentences_say_the_json_ratios(rel, names, phrase):
    assert quoted.phrase_of(names, phrase) in (ROOT / rel).read_text()


def test_every_step_figure_in_the_snn2ann_doc_is_inside_a_quoted_block():
    # A table row with a MiB or ms figure typed by hand outside a rendered block is not checked against a JSON.
    text = quoted.BLOCK.sub("", (ROOT / "docs" / "snn2ann.md").read_text())
    loose = [line for line in text.splitlines() if line.startswith("|") and re.search(r"\d\s*(MiB|ms)\b", line)]
    assert not loose, loose


def test_a_changed_measurement_makes_its_quote_stale():
    text = (ROOT / "docs" / "snn2ann.md").read_text()
    name = quoted.BLOCK.search(text)["name"]
    record = quoted.load(name)
    changed = copy.deepcopy(record)
    changed["values"]["results"][0]["arms"]["snn2ann"]["memory_bytes"] += 2**20
    assert quoted.render_table(changed) != quoted.render_table(record)
    r = quoted.find(record["values"]["results"], "cifar", 4)["ratio_snn2ann_over_bptt"]
    assert f"{r['memory']:.3f}x" in quoted.readme_phrase(record)


def test_results_files_record_how_where_and_when():
    for path in sorted(quoted.RESULTS_DIR.glob("*.json")):
        record = json.loads(path.read_text())
        assert {"command", "commit", "machine", "date_utc", "load_before", "load_after", "values"} <= set(record), path
        assert re.fullmatch(r"[0-9a-f]{40}", record["commit"]), path


def test_spikingjelly_speedups_are_the_fastest_spikingjelly_step_over_snnjax_and_go_stale():
    record = quoted.load("snnjax_vs_spikingjelly_cpu")
    readme = (ROOT / "docs" / "running.md").read_text()  # its Performance section
    for r in record["values"]["results"]:
        sj = {k: v["step_s"] for k, v in r["impls"].items() if k.startswith("sj:") and "step_s" in v}
        ((label, speedup),) = r["speedup_vs_sj"].items()
        # Recomputed from the per-impl medians: the fastest SpikingJelly build, its time / snnjax's.
        assert r["fastest_sj"] == min(sj, key=sj.get)
        assert speedup == pytest.approx(min(sj.values()) / r["impls"][label]["step_s"])
        assert f"{speedup:.2f}x at T={r['time_steps']} " in readme
    # A re-measured snnjax step makes the README's sentence and the RESULTS.md table stale.
    changed = copy.deepcopy(record)
    r0 = changed["values"]["results"][0]
    ((label, speedup),) = r0["speedup_vs_sj"].items()
    r0["impls"][label]["step_s"] *= 1.25
    r0["speedup_vs_sj"][label] = speedup / 1.25
    assert quoted.spikingjelly_phrase(changed) not in readme
    assert quoted.render_table(changed) != quoted.render_table(record)
