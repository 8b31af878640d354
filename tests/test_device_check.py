"""The device check (``devcheck/``): its ``--dry-run`` still runs on this CPU, and every path it names exists.

The dry run exercises every part with tiny sizes (CPU, width 8, batch 4): the correctness tests
(a subset), the sharded check (a one-device CPU mesh vs the plain CPU step), the speed table (snnjax; SpikingJelly
where an interpreter with it exists, else a recorded skip) and a one-epoch digits run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "devcheck"  # entry: devcheck/run.sh -> python -m devcheck


def _load_module():
    """The devcheck package at the repository root, imported the way ``python -m devcheck`` imports it."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import devcheck.flops
    import devcheck.plan
    import devcheck.report

    return types.SimpleNamespace(
        resnet_train_flops=devcheck.flops.resnet_train_flops, _best_sj=devcheck.report._best_sj, plan=devcheck.plan
    )


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_analytic_flops_of_resnet18_cifar():
    dc = _load_module()
    # Width 64, one image, T=1: the CIFAR ResNet-18's 0.56 GMACs (stem 1.8 M MACs + body).
    f = dc.resnet_train_flops(18, 64, time_steps=1, batch=1)
    assert f["forward_flops"] / 2 == pytest.approx(0.556e9, rel=0.01)
    # Training = forward + input gradient + kernel gradient (no input gradient for the stem).
    stem = 32 * 32 * 3 * 64 * 9
    assert f["train_flops"] / 2 == pytest.approx(3 * (f["forward_flops"] / 2 - stem) + 2 * stem, rel=1e-9)
    # Linear in batch, the body linear in T, the stem counted once per image.
    f4 = dc.resnet_train_flops(18, 64, time_steps=4, batch=8)
    # (the head, 10 x 512 MACs per image, runs once on the time-averaged features: within 1e-4)
    assert f4["train_flops"] == pytest.approx(8 * (4 * (f["train_flops"] - 2 * 2 * stem) + 2 * 2 * stem), rel=1e-4)


def test_markdown_ratio_uses_the_fastest_spikingjelly_row_of_the_same_precision_class():
    dc = _load_module()
    rows = [
        dict(framework="snnjax", impl="xla", dtype="bfloat16", T=4, batch=64, status="ok", step_s=0.1),
        dict(framework="spikingjelly", impl="auto", dtype="float16", T=4, batch=64, status="ok", step_s=0.3),
        dict(framework="spikingjelly", impl="auto", dtype="bfloat16", T=4, batch=64, status="ok", step_s=0.25),
        dict(framework="spikingjelly", impl="auto", dtype="float32", T=4, batch=64, status="ok", step_s=0.05),
        dict(framework="spikingjelly", impl="torch", dtype="bfloat16", T=4, batch=128, status="ok", step_s=0.01),
    ]
    assert dc._best_sj(rows, rows[0]) == 0.25
    assert dc._best_sj(rows, rows[1]) is None


def test_every_file_and_preset_the_device_check_names_exists():
    plan = _load_module().plan
    named = [*plan.files(plan.QUICK_TESTS), *plan.files(plan.TESTS), *plan.STEP_SCRIPTS]
    assert [f for f in named if not (ROOT / f).is_file()] == []
    for config in (plan.E2E_CONFIG, plan.DRY_E2E_CONFIG, plan.FALLBACK_E2E_CONFIG):
        path, _, preset = config.partition(":")
        spec = importlib.util.spec_from_file_location("config_under_test", ROOT / path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.get_config(preset or None) is not None, config


# Repository paths as the device check's files and its README write them (``devcheck/run.sh``, ``tests/x.py``).
_PATH = re.compile(r"(?<![\w./-])((?:devcheck|benchmarks|tests|configs|docs)/[\w./-]*\w\.(?:py|sh|md|json))")


def test_every_path_the_device_check_files_name_exists():
    """The entry (``devcheck/run.sh``), the fetch script, the GPU issue's ``benchmarks/device_check.sh`` shim
    and every repository path named in the package, its scripts and its README: a move leaves none behind."""
    files = [*sorted(PACKAGE.glob("*.py")), *sorted(PACKAGE.glob("*.sh")), PACKAGE / "README.md"]
    files.append(ROOT / "benchmarks" / "device_check.sh")
    for f in files:
        assert f.is_file(), f
    named = {m for f in files for m in _PATH.findall(f.read_text())}
    assert {"devcheck/run.sh", "devcheck/fetch_wheels.sh"} <= named
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []
    shim = (ROOT / "benchmarks" / "device_check.sh").read_text()
    assert 'exec bash "$(dirname "$0")/../devcheck/run.sh" "$@"' in shim
    assert 'exec python3 -m devcheck --out "$out" "$@"' in (PACKAGE / "run.sh").read_text()


@pytest.mark.skipif((ROOT / ".whl").is_dir(), reason="run.sh would install the carried .whl/ wheels into /tmp/site")
def test_the_gpu_issues_command_reaches_the_device_check(tmp_path):
    """``bash benchmarks/device_check.sh --help``: shim -> devcheck/run.sh -> ``python3 -m devcheck``."""
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    env["OUT"] = str(tmp_path)
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "One command for a GPU session" in proc.stdout and "--dry-run" in proc.stdout


def test_every_test_selection_of_the_device_check_selects_tests():
    """Each (file, -k) pair keeps at least one test of its file, and the sharded test is among them."""
    plan = _load_module().plan
    for selections in (plan.QUICK_TESTS, plan.TESTS):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
            + [*plan.files(selections), "-k", plan.k_expression(selections)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        nodes = [l for l in proc.stdout.splitlines() if "::" in l]
        for path, k in selections:
            mine = [n for n in nodes if n.startswith(path + "::")]
            assert mine, (path, k)
            if k is None:  # a whole file: every one of its tests, none filtered out by another file's -k
                assert len(mine) == len(_collect(path)), path
        assert not [n for n in nodes if n.split("::")[0] not in plan.files(selections)]
    assert any(plan.SHARDED_TEST in n for n in nodes)


def _collect(path: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts=", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return [l for l in proc.stdout.splitlines() if "::" in l]


def test_k_expression_scopes_each_expression_to_its_file():
    plan = _load_module().plan
    expr = plan.k_expression([("tests/test_a.py", None), ("tests/sub/test_b.py", "kd or hinton")])
    assert expr == "(test_a) or (test_b and (kd or hinton))"


@pytest.mark.slow
def test_dry_run_writes_json_and_markdown(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "XLA_FLAGS")}
    # No fake devices; the suite's compile-speed flags only (tests/conftest.py): a dry run's timings mean nothing.
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    # Generous limits: on a quiet 2-core machine the dry run takes about a minute, on a loaded one much more.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "devcheck",
            "--dry-run",
            "--out",
            str(out),
            "--budget-s",
            "900",
            "--tests-timeout-s",
            "200",
            "--e2e-timeout-s",
            "300",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "device_check.json").read_text())
    md = (out / "device_check.md").read_text()

    meta = result["meta"]
    assert meta["dry_run"] is True and meta["budget_s"] == 900
    assert _positive(meta["wall_s"]) and len(meta["load_average"]) == 3

    tests = result["quick_tests"]
    assert tests["status"] == "passed", tests
    assert tests["platform"] == "cpu" and tests["passed"] >= 2 and tests["failed"] == 0
    assert result["tests"]["status"].startswith("skipped:")
    sharded = result["sharded_check"]
    assert sharded["status"] == "passed", sharded
    assert sharded["num_devices"] == 1 and sharded["loss_device"] == pytest.approx(sharded["loss_cpu"], rel=1e-4)

    rows = result["speed"]["rows"]
    assert [(r["framework"], r["dtype"]) for r in rows if r["framework"] == "snnjax"] == [("snnjax", "float32")]
    for r in rows:
        assert r["T"] == 2 and r["batch"] == 4 and r["width"] == 8
        assert _positive(r["analytic_flops"])
        if r["framework"] == "snnjax":
            assert r["status"] == "ok", r
        if r["status"] == "ok":
            for key in ("step_s", "images_T_per_s", "peak_mb", "tflops_per_s", "peak_fraction"):
                assert _positive(r[key]), (key, r)
            assert r["images_T_per_s"] == pytest.approx(2 * 4 / r["step_s"])
            assert r["peak_fraction"] == pytest.approx(r["tflops_per_s"] * 1e12 / 790e12)
        else:
            assert r["status"].startswith(("skipped:", "error:")), r
    ok_sj = [r for r in rows if r["framework"] == "spikingjelly" and r["status"] == "ok"]
    skipped_sj = [r for r in rows if r["framework"] == "spikingjelly" and r["status"].startswith("skipped:")]
    assert len(ok_sj) + len(skipped_sj) == 2  # auto + torch kernel, float32: ran, or skipped with a reason
    snn = next(r for r in rows if r["framework"] == "snnjax" and r["dtype"] == "float32")
    assert 0.5 < snn["xla_flops"] / snn["analytic_flops"] < 1.5  # XLA's own count agrees with the analytic one

    e2e = result["e2e"]
    assert e2e["status"] == "ok", e2e
    assert e2e["config"] == "configs/baseline.py:digits"
    assert [e["epoch"] for e in e2e["epochs"]] == [1]
    assert 0.0 <= e2e["epochs"][0]["test_accuracy"] <= 1.0
    assert 0.0 <= e2e["summary"]["best_test_accuracy"] <= 1.0

    assert md.startswith("# Device check (DRY RUN")
    for header in ("## a. Correctness on the device", "## b. Training step", "## c. End-to-end run"):
        assert header in md
    table = [l for l in md.splitlines() if l.startswith("| 2 | 4 | snnjax |")]
    assert len(table) == 1 and table[0].rstrip().endswith("| ok |")


def test_the_spikingjelly_worker_imports_without_jax_or_flax():
    """The SpikingJelly worker runs ``python -m devcheck`` under an interpreter with torch only: the
    devcheck package must import there (a module-level snnjax import once made both SJ rows fail)."""
    code = (
        "import sys\n"
        "for m in ('jax', 'flax', 'optax', 'snnjax'): sys.modules[m] = None  # importing them raises\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import devcheck.cli, devcheck.workers\n"
        "print('imported')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "imported", proc.stderr[-2000:]
