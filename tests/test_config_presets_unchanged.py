"""Every preset of every ``configs/*.py`` builds the same ``ConfigDict`` as the golden file records.

The golden file (``tests/golden/config_presets.json``) records, for every combination of each config's
preset groups (the full product of what its ``parse_presets`` call accepts), the SHA-256 of the
config's ``to_json_best_effort(sort_keys=True)``, its values (each config's default preset in full,
the other combinations as the leaves that differ from it: readable, and a failure names the keys)
and its layout: every key in iteration order with its value's type, ``locked`` sections and field
references (``ref=<path>`` when a field shares another's reference, as pipe-D's
``data.options.time_steps`` does ``model.time_steps``). A combination the config refuses records its
error instead.

A refactor of the configs or of the methods' preset tables must leave this test passing. A deliberate
change of a preset's values regenerates the file (and the diff shows what changed):

    python tests/test_config_presets_unchanged.py --write
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import sys

import ml_collections
import pytest
from ml_collections import config_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
GOLDEN = os.path.join(ROOT, "tests", "golden", "config_presets.json")


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"configs_golden_{name}", os.path.join(CONFIGS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preset_groups(module) -> dict[str, tuple[str, ...]]:
    """The groups ``module.get_config`` hands to ``config.parse_presets`` (caught on a default call)."""
    from snnjax import config as config_lib

    seen = []
    original = config_lib.parse_presets

    def spy(arg, allowed):
        seen.append({group: tuple(tokens) for group, tokens in allowed.items()})
        return original(arg, allowed)

    config_lib.parse_presets = spy
    try:
        module.get_config(None)
    finally:
        config_lib.parse_presets = original
    assert len(seen) == 1, f"{module.__name__}: expected one parse_presets call, got {len(seen)}"
    return seen[0]


def layout(cfg: ml_collections.ConfigDict) -> list[str]:
    """``path:type`` for every key in iteration order (sections: ``ConfigDict``, ``+locked`` when locked)."""
    out: list[str] = []
    refs: dict[int, str] = {}

    def visit(node, prefix: str) -> None:
        for key in node.keys():
            path = f"{prefix}{key}"
            field = node._fields[key]  # noqa: SLF001 (the stored field: a value or a FieldReference)
            if isinstance(field, config_dict.FieldReference):
                if id(field) in refs:
                    out.append(f"{path}:ref={refs[id(field)]}")
                    continue
                refs[id(field)] = path
                out.append(f"{path}:ref[{field.get_type().__name__}]={type(field.get()).__name__}")
                continue
            if isinstance(field, ml_collections.ConfigDict):
                out.append(f"{path}:ConfigDict" + ("+locked" if field.is_locked else ""))
                visit(field, path + ".")
                continue
            kind = type(field).__name__
            if isinstance(field, (tuple, list)):
                kind += "[" + ",".join(type(v).__name__ for v in field) + "]"
            out.append(f"{path}:{kind}")

    visit(cfg, "")
    return out


def flat(cfg_json: str) -> dict[str, str]:
    """``{"optim.lr": "0.05", ...}``: every leaf of a config's JSON, each value as JSON text (1 and 1.0 differ)."""
    out: dict[str, str] = {}

    def visit(node, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                visit(v, f"{prefix}{k}.")
        else:
            out[prefix.rstrip(".")] = json.dumps(node, sort_keys=True)

    visit(json.loads(cfg_json), "")
    return out


def snapshot(name: str, arg: str) -> dict:
    """``{"json": to_json_best_effort(sort_keys=True), "layout": [...]}`` or ``{"error": ...}``."""
    try:
        cfg = _module(name).get_config(arg)
    except Exception as e:  # noqa: BLE001 (a refused combination is recorded as such)
        return {"error": f"{type(e).__name__}: {e}"}
    return {"json": cfg.to_json_best_effort(sort_keys=True), "layout": layout(cfg)}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_names() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(CONFIGS) if f.endswith(".py") and not f.startswith("_"))


def combinations() -> list[tuple[str, str]]:
    """``(config name, preset arg)`` for every combination of every config's preset groups."""
    out = []
    for name in config_names():
        groups = preset_groups(_module(name))
        for tokens in itertools.product(*groups.values()):
            out.append((name, ",".join(tokens)))
    return out


def key(name: str, arg: str) -> str:
    return f"configs/{name}.py:{arg}"


def _golden() -> dict:
    with open(GOLDEN) as f:
        return json.load(f)


def expected(golden: dict, k: str) -> dict:
    """The recorded snapshot of preset ``k``: ``{"error"}`` or ``{"flat", "sha256", "layout"}`` (the flat
    values rebuilt from the config's default preset and the recorded differences)."""
    entry = golden["presets"][k]
    if "error" in entry:
        return {"error": entry["error"]}
    base = golden["defaults"][k.split(":", 1)[0]]
    values = {p: v for p, v in base.items() if p not in entry.get("unset", ())}
    values.update(entry.get("set", {}))
    return {"flat": values, "sha256": entry["sha256"], "layout": golden["layouts"][entry["layout"]]}


def observed(name: str, arg: str) -> dict:
    snap = snapshot(name, arg)
    if "error" in snap:
        return snap
    return {"flat": flat(snap["json"]), "sha256": sha(snap["json"]), "layout": snap["layout"]}


def test_every_config_accepts_the_same_preset_combinations():
    assert sorted(key(n, a) for n, a in combinations()) == sorted(_golden()["presets"])


MAX_CONFIG_LINES = 80


@pytest.mark.parametrize("name", config_names())
def test_config_files_only_pick_presets_and_stay_short(name):
    """A config file picks presets; the values live in its method's tables (docs/architecture.md)."""
    with open(os.path.join(CONFIGS, f"{name}.py")) as f:
        lines = f.read().splitlines()
    assert len(lines) <= MAX_CONFIG_LINES, f"configs/{name}.py has {len(lines)} lines (> {MAX_CONFIG_LINES})"


@pytest.mark.parametrize("name", config_names())
def test_every_preset_builds_the_recorded_config(name):
    golden = _golden()
    keys = [k for k in golden["presets"] if k.startswith(f"configs/{name}.py:")]
    assert keys, f"no recorded presets for configs/{name}.py"
    changed = []
    for k in keys:
        want, got = expected(golden, k), observed(name, k.split(":", 1)[1])
        if got == want:
            continue
        if "error" in got or "error" in want:
            changed.append(f"{k}: got {got.get('error', 'a config')}, want {want.get('error', 'a config')}")
            continue
        diff = [
            f"{p}: got {got['flat'].get(p, '<missing>')}, want {want['flat'].get(p, '<missing>')}"
            for p in sorted(set(got["flat"]) | set(want["flat"]))
            if got["flat"].get(p) != want["flat"].get(p)
        ]
        if got["layout"] != want["layout"]:
            moved = sorted(set(got["layout"]) ^ set(want["layout"]))
            diff += [f"layout {x!r} only in {'got' if x in got['layout'] else 'want'}" for x in moved] or [
                "layout: same keys in another order"
            ]
        changed.append(f"{k}: " + ("; ".join(diff[:12]) or "to_json_best_effort text differs"))
    assert not changed, f"{len(changed)} preset(s) changed:\n" + "\n".join(changed[:10])


def write() -> None:
    """Record every combination: each config's default preset in full, the others as differences from it."""
    defaults, presets, layouts = {}, {}, {}
    for name, arg in combinations():
        snap = snapshot(name, arg)
        k = key(name, arg)
        if "error" in snap:
            presets[k] = {"error": snap["error"]}
            continue
        values = flat(snap["json"])
        base = defaults.setdefault(f"configs/{name}.py", values)  # the first combination: all defaults
        layout_id = layouts.setdefault(json.dumps(snap["layout"]), f"L{len(layouts)}")
        presets[k] = {
            "sha256": sha(snap["json"]),
            "layout": layout_id,
            "set": {p: v for p, v in values.items() if base.get(p) != v},
            "unset": sorted(p for p in base if p not in values),
        }
    table = {
        "about": "tests/test_config_presets_unchanged.py: every configs/*.py preset combination; regenerate "
        "with `python tests/test_config_presets_unchanged.py --write`",
        "defaults": defaults,
        "layouts": {v: json.loads(k) for k, v in layouts.items()},
        "presets": presets,
    }
    os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
    with open(GOLDEN, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")
    errors = sum("error" in v for v in presets.values())
    print(f"wrote {len(presets)} presets ({errors} refused) to {os.path.relpath(GOLDEN, ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    sys.path.insert(0, ROOT)
    write()
