"""One command for a GPU session: correctness on the device, training-step speed vs SpikingJelly, a short run.

    python benchmarks/device_check.py --out "$OUT"            # on the GPU machine (<= 8 min on one H200)
    python benchmarks/device_check.py --dry-run --out /tmp/dc # tiny sizes on this CPU (well under a minute)

Three parts, each recorded in ``device_check.json`` and summarised in ``device_check.md`` (both in
``--out``, default ``$OUT``). A part that cannot run (no SpikingJelly, no GPU, no preset, out of
time) is recorded as ``"skipped: <reason>"`` or ``"error: <reason>"`` and the others still run.

a. **tests**: the device-independent correctness tests under ``JAX_PLATFORMS=cuda`` (``cpu`` in a
   dry run): LIF vs NumPy (``tests/test_neurons.py``), fast paths equal (``tests/test_fast_paths.py``),
   transplant (``tests/test_transplant.py``), KD loss (``tests/test_losses.py -k "kd or hinton"``),
   and the sharded-step test where the backend has its 8 devices; plus this script's own
   **sharded check**: one training step of a tiny Spiking ResNet on a mesh over all devices of
   the backend vs the same step on the CPU (float32, ``highest`` matmul precision), loss and
   parameters compared (one H200: a one-device mesh; the 8-device test needs 8 devices).
b. **speed**: one SGD step of the CIFAR Spiking ResNet-18 (width 64), T = 4, 1, 6 at batch 128 and
   64 (in that order of priority), snnjax (``benchmarks/train_step.py`` with the library's
   defaults: unrolled LIF, ``conv_grad=auto``) in float32 and bfloat16 vs SpikingJelly 2.0
   (``benchmarks/spikingjelly_step.py``) with its Triton/native LIF kernel (``auto``) and its torch
   reference LIF (``torch``), each in float32 and AMP bfloat16 / float16. Per row: median step
   time, images*T/s, peak device memory, the step's FLOPs (counted analytically for the model, and
   XLA's own count for snnjax) and the fraction of the H200's dense bf16 peak (790 TFLOP/s) reached.
   Each framework runs in one long-lived worker process (one per SpikingJelly kernel), only one of
   them busy at a time. SpikingJelly 2.0 has no CuPy backend any more (its GPU kernels are the
   native CUDA extension, built only from source, and Triton); which kernel ran is recorded.
c. **e2e**: ``configs/idsnn.py:fashion_mnist_full`` (if the preset and the Fashion-MNIST files are
   there) for ``--e2e-epochs`` student epochs after ``--e2e-teacher-epochs`` teacher epochs, else a
   CIFAR-shaped synthetic-data run (``configs/baseline.py`` with ``data.name=synthetic``): wall time
   per epoch and accuracy.

The whole run keeps to ``--budget-s`` (default 460 s): speed rows left when time runs out are
recorded as skipped, and the e2e run gets what is left (at most ``--e2e-timeout-s``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import pathlib
import platform
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
H200_BF16_PEAK_FLOPS = 790e12  # dense bf16, measured ~788 TFLOP/s with an 8192^3 matmul (device README)
STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

# The correctness tests (a): files, and a -k expression keeping only the KD tests of test_losses.py
# and only the sharded-step test of test_engine.py.
TEST_FILES = [
    "tests/test_neurons.py",
    "tests/test_fast_paths.py",
    "tests/test_transplant.py",
    "tests/test_losses.py",
    "tests/test_engine.py",
]
TEST_K = "(not test_losses and not test_engine) or kd or hinton or sharded"
DRY_TEST_FILES = ["tests/test_neurons.py", "tests/test_losses.py"]
DRY_TEST_K = "hand_computed or kd_kl_hand_value"

FULL = dict(
    width=64,
    cells=[(4, 128), (4, 64), (1, 128), (6, 128), (1, 64), (6, 64)],
    steps=10,
    warmup=3,
    snnjax_dtypes=["float32", "bfloat16"],
    sj_impls=["auto", "torch"],
    sj_dtypes=["float32", "bfloat16", "float16"],
)
DRY = dict(
    width=8,
    cells=[(2, 4)],
    steps=2,
    warmup=1,
    snnjax_dtypes=["float32"],
    sj_impls=["auto", "torch"],
    sj_dtypes=["float32"],
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT", ""), help="output folder (default $OUT)")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (CI)")
    p.add_argument("--parts", default="tests,speed,e2e", help="comma-separated subset of tests,speed,e2e")
    p.add_argument("--budget-s", type=float, default=None, help="whole run (default 460; dry run 240)")
    p.add_argument("--tests-timeout-s", type=float, default=None, help="default 100; dry run 90")
    p.add_argument("--e2e-timeout-s", type=float, default=None, help="default 150; dry run 60")
    p.add_argument("--e2e-epochs", type=int, default=2)
    p.add_argument("--e2e-teacher-epochs", type=int, default=1)
    p.add_argument("--e2e-config", default="configs/idsnn.py:fashion_mnist_full")
    p.add_argument(
        "--sj-python",
        default=os.environ.get("SJ_PYTHON", ""),
        help="interpreter with SpikingJelly + torch (default: $SJ_PYTHON, else this one if it "
        "imports spikingjelly, else /work/sjvenv/bin/python)",
    )
    p.add_argument(
        "--test-workers",
        type=int,
        default=None,
        help="pytest-xdist workers for the tests (default 4 on a GPU, 0 in a dry run)",
    )
    p.add_argument("--worker", choices=("snnjax", "spikingjelly", "sharded", "e2e"), help=argparse.SUPPRESS)
    p.add_argument("--neuron-impl", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--worker-arg", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    dry = args.dry_run
    args.budget_s = args.budget_s or (240.0 if dry else 460.0)
    args.tests_timeout_s = args.tests_timeout_s or (90.0 if dry else 100.0)
    args.e2e_timeout_s = args.e2e_timeout_s or (60.0 if dry else 150.0)
    args.parts = [x for x in args.parts.split(",") if x]
    bad = [x for x in args.parts if x not in ("tests", "speed", "e2e")]
    if bad:
        p.error(f"unknown --parts {bad}")
    if not args.worker and not args.out:
        p.error("--out DIR (or $OUT) is required")
    return args


# ----------------------------------------------------------------------------- FLOPs


def resnet_train_flops(
    depth: int, width: int, time_steps: int, batch: int, hw: int = 32, in_ch: int = 3, classes: int = 10
) -> dict[str, float]:
    """FLOPs (2 per multiply-add) of one training step of the CIFAR Spiking ResNet, convolutions + head.

    Forward: the 3x3 stem once per image (static input, direct encoding), every block convolution
    (and 1x1 shortcut) once per time step. Backward: kernel gradient for every convolution, input
    gradient for all but the stem (its input is the data): 2x the forward MACs of the body, 1x of
    the stem. BN, LIF and the optimizer update are elementwise and not counted (<1%).
    """

    def conv(h_out, cin, cout, k):
        return h_out * h_out * cin * cout * k * k

    stem = conv(hw, in_ch, width, 3)
    body, cin, h = 0, width, hw
    for s, n in enumerate(STAGES[depth]):
        cout = width * 2**s
        for b in range(n):
            stride = 2 if s > 0 and b == 0 else 1
            h_out = h // stride
            body += conv(h_out, cin, cout, 3) + conv(h_out, cout, cout, 3)
            if stride != 1 or cin != cout:
                body += conv(h_out, cin, cout, 1)
            cin, h = cout, h_out
    head = cin * classes
    fwd_macs = batch * (stem + time_steps * body + head)
    train_macs = batch * (2 * stem + 3 * time_steps * body + 3 * head)
    return dict(forward_flops=2.0 * fwd_macs, train_flops=2.0 * train_macs)


# ----------------------------------------------------------------------------- workers (subprocesses)


def _emit(obj: dict) -> None:
    sys.stdout.write("RESULT " + json.dumps(obj) + "\n")
    sys.stdout.flush()


def _step_flags(req: dict) -> list[str]:
    """The step-benchmark flags that snnjax's and SpikingJelly's scripts share (one request)."""
    return [
        *("--depth", "18", "--width", str(req["width"]), "--time-steps", str(req["T"])),
        *("--batch", str(req["batch"]), "--dtype", req["dtype"]),
        *("--steps", str(req["steps"]), "--warmup", str(req["warmup"])),
    ]


def worker_loop(kind: str, handle) -> None:
    """Read one JSON request per stdin line, answer ``RESULT {json}`` per request (errors included)."""
    _emit(dict(ready=True, kind=kind))
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line == "quit":
            break
        req = json.loads(line)
        try:
            rec = handle(req)
        except Exception as e:  # noqa: BLE001 - recorded, the worker keeps serving
            rec = dict(error=f"{type(e).__name__}: {e}"[:800], traceback=traceback.format_exc()[-2000:])
        rec["request"] = req
        _emit(rec)


def snnjax_worker() -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    from snnjax import runtime

    runtime.use_eigen_convolutions()  # only where XLA runs on the CPU alone (as launch.py)
    import train_step

    def handle(req):
        flags = [*_step_flags(req), "--unroll", "0", "--conv-grad", "auto"]
        rec = train_step.measure(train_step.parse_args(flags))
        rec["variant"] = "library default (unroll=0, conv_grad=auto)"
        import gc

        gc.collect()
        return rec

    worker_loop("snnjax", handle)


def spikingjelly_worker(neuron_impl: str) -> None:
    sys.path.insert(0, str(HERE))
    import spikingjelly_step

    def handle(req):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        flags = [*_step_flags(req), "--device", device, "--neuron-impl", neuron_impl]
        rec = spikingjelly_step.measure(spikingjelly_step.parse_args(flags))
        rec["requested_impl"] = neuron_impl
        if device == "cuda":
            torch.cuda.empty_cache()
        return rec

    worker_loop("spikingjelly", handle)


def sharded_worker() -> None:
    """One tiny training step on a mesh over the default backend's devices vs the CPU; one RESULT line."""
    sys.path.insert(0, str(ROOT))
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from snnjax import models
    from snnjax.train import mesh as mesh_lib
    from snnjax.train import steps
    from snnjax.train.state import create_train_state

    devices = jax.devices()
    cpu = jax.devices("cpu")[0]
    batch = 16 * len(devices) if 16 % len(devices) else 16
    cfg = models.model_config(
        name="resnet18", neuron="lif", time_steps=int(os.environ.get("DC_SHARDED_T", "2")), width=4
    )
    model = models.build_model(cfg, 5)
    x = jax.random.normal(jax.random.key(1), (batch, 8, 8, 3))
    y = jnp.arange(batch, dtype=jnp.int32) % 5
    with jax.default_device(cpu):
        variables = jax.jit(lambda k: model.init(k, x[:1], train=False))(jax.random.key(0))
    variables = {k: v for k, v in variables.items() if k in ("params", "batch_stats")}
    tx = optax.sgd(0.1, momentum=0.9)
    state = create_train_state(variables, tx, jax.random.key(3))
    step = steps.make_train_step(model, tx)
    with jax.default_matmul_precision("highest"):
        mesh = mesh_lib.make_mesh(devices)
        s_dev, m_dev = jax.jit(step, out_shardings=mesh_lib.replicated(mesh))(
            jax.device_put(state, mesh_lib.replicated(mesh)), jax.device_put((x, y), mesh_lib.batch_sharded(mesh)), None
        )
        s_cpu, m_cpu = _cpu_step(jax, step, state, x, y, cpu)

    def worst(a_tree, b_tree):
        rel = 0.0
        for a, b in zip(jax.tree.leaves(a_tree), jax.tree.leaves(b_tree)):
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            rel = max(rel, float(np.max(np.abs(a - b) / (np.abs(b) + 1e-5))) if a.size else 0.0)
        return rel

    loss_dev, loss_cpu = float(m_dev["loss"]), float(m_cpu["loss"])
    params_rel = worst(s_dev.params, s_cpu.params)
    stats_rel = worst(s_dev.model_state, s_cpu.model_state)
    ok = abs(loss_dev - loss_cpu) <= 1e-4 * abs(loss_cpu) + 1e-6 and params_rel < 1e-2 and stats_rel < 1e-2
    _emit(
        dict(
            platform=devices[0].platform,
            device_kind=devices[0].device_kind,
            num_devices=len(devices),
            batch=batch,
            loss_device=loss_dev,
            loss_cpu=loss_cpu,
            params_max_rel_diff=params_rel,
            batch_stats_max_rel_diff=stats_rel,
            status="passed" if ok else "failed",
            criterion="|loss diff| <= 1e-4 rel, params and BN stats max rel diff < 1e-2 (rel to |cpu| + 1e-5)",
        )
    )


def _cpu_step(jax, step, state, x, y, cpu):
    with jax.default_device(cpu):
        return jax.jit(step)(jax.device_put(state, cpu), jax.device_put((x, y), cpu), None)


def e2e_worker(spec_json: str) -> None:
    """Run the e2e pipeline in this process (the parent watches metrics.jsonl and may stop it)."""
    spec = json.loads(spec_json)
    sys.path.insert(0, str(ROOT))
    from snnjax import runtime

    runtime.use_eigen_convolutions()
    import importlib.util

    from snnjax import pipelines

    path, _, preset = spec["config"].partition(":")
    mod_spec = importlib.util.spec_from_file_location("e2e_config", str(ROOT / path))
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    cfg = mod.get_config(preset or None)
    for key, value in spec["overrides"].items():
        node = cfg
        *parents, leaf = key.split(".")
        for name in parents:
            node = node[name]
        node[leaf] = value
    _emit(dict(started=True, config=spec["config"], overrides=spec["overrides"]))
    summary = pipelines.get(cfg.pipeline)(cfg, spec["workdir"])
    _emit(dict(summary=_json_safe(summary)))


def _json_safe(obj):
    return json.loads(json.dumps(obj, default=lambda o: repr(o)))


# ----------------------------------------------------------------------------- parent side


class Worker:
    """A long-lived worker subprocess answering one request at a time."""

    def __init__(self, name: str, cmd: list[str], env: dict, log):
        self.name, self.cmd = name, cmd
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT, bufsize=1
        )
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.dead_reason = ""

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                self.q.put(json.loads(line[len("RESULT ") :]))
        self.q.put(None)

    def get(self, timeout: float) -> dict | None:
        try:
            rec = self.q.get(timeout=max(timeout, 0.1))
        except queue.Empty:
            self.kill(f"no answer within {timeout:.0f} s")
            return None
        if rec is None:
            self.dead_reason = self.dead_reason or f"worker exited with code {self.proc.wait()}"
        return rec

    def ask(self, req: dict, timeout: float) -> dict | None:
        if self.dead_reason:
            return None
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            self.dead_reason = f"worker gone: {e}"
            return None
        return self.get(timeout)

    def kill(self, reason: str):
        self.dead_reason = reason
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except Exception:  # noqa: BLE001
                self.kill("closed")


class Run:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.t0 = time.monotonic()
        self.out = pathlib.Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out / "device_check.log"
        self.log = open(self.log_path, "w")
        self.sizes = DRY if args.dry_run else FULL
        self.result: dict[str, Any] = dict(meta=self.meta())

    def left(self) -> float:
        return self.args.budget_s - (time.monotonic() - self.t0)

    def say(self, msg: str) -> None:
        line = f"[device_check {time.monotonic() - self.t0:6.1f}s] {msg}"
        print(line, file=sys.stderr, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def env(self, **extra) -> dict:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def meta(self) -> dict:
        gpu = _nvidia_smi()
        commit = _run_text(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        return dict(
            date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            host=platform.node(),
            cpus=os.cpu_count(),
            python=platform.python_version(),
            gpu=gpu or "none",
            dry_run=self.args.dry_run,
            git_commit=commit or "unknown",
            budget_s=self.args.budget_s,
            load_average=list(os.getloadavg()),
            bf16_peak_flops=H200_BF16_PEAK_FLOPS,
            sizes=self.sizes,
        )

    @property
    def platform(self) -> str:
        return "cpu" if self.args.dry_run else "cuda"

    # ---- a. tests
    def tests(self) -> dict:
        files = DRY_TEST_FILES if self.args.dry_run else TEST_FILES
        k = DRY_TEST_K if self.args.dry_run else TEST_K
        present = [f for f in files if (ROOT / f).exists()]
        missing = sorted(set(files) - set(present))
        res: dict[str, Any] = dict(platform=self.platform, files=present, k=k, missing_files=missing)
        if not present:
            res["status"] = "skipped: none of the test files exists"
            return res
        workers = self.args.test_workers if self.args.test_workers is not None else (0 if self.args.dry_run else 4)
        cmd = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-o", "addopts=", *present, "-k", k]
        env = self.env(JAX_PLATFORMS=self.platform)
        if workers and _has_module("xdist"):
            cmd += ["-n", str(workers)]
            env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # several processes share the GPU
        res["command"] = " ".join(cmd[1:])
        timeout = min(self.args.tests_timeout_s, max(self.left() - 30, 10))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
            out, rc = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            rc = f"timeout after {timeout:.0f} s"
        res["duration_s"] = time.monotonic() - t0
        self.log.write(out[-20000:] + "\n")
        counts = dict(passed=0, failed=0, skipped=0, error=0, xfailed=0, xpassed=0)
        failures = []
        for m in re.finditer(
            r"^(?:\[gw\d+\] \[\s*\d+%\] )?(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\s+(\S+::\S+)"
            r"|^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)",
            out,
            re.M,
        ):
            word, node = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
            key = {"XFAIL": "xfailed", "XPASS": "xpassed"}.get(word, word.lower())
            counts[key] += 1
            if word in ("FAILED", "ERROR"):
                failures.append(node)
        res.update(counts, failures=sorted(set(failures)), returncode=rc)
        if isinstance(rc, str):
            res["status"] = f"error: {rc} ({counts['passed']} passed before)"
        elif counts["failed"] or counts["error"] or rc not in (0,):
            tail = out.strip().splitlines()[-1] if out.strip() else ""
            res["status"] = f"failed: {tail[:200]}"
        else:
            res["status"] = "passed"
        # The 8-device test needs 8 devices; a one-GPU machine fails its first assert by design.
        res["note"] = (
            "tests/test_engine.py::test_sharded_step_equals_single_device_step asserts 8 devices "
            "(conftest's fake CPU devices); with fewer devices its failure is expected; the "
            "sharded check below covers the device"
        )
        return res

    def sharded(self) -> dict:
        cmd = [sys.executable, str(HERE / "device_check.py"), "--worker", "sharded"]
        env = self.env(JAX_PLATFORMS=f"{self.platform},cpu" if self.platform != "cpu" else "cpu")
        if self.platform == "cpu":
            # Dry run: a one-device CPU mesh, T=1. (Two fake CPU devices work too, but their
            # collectives rendezvous thread against thread: 9 minutes for 30 CPU-seconds on a
            # loaded 2-core machine.)
            env["DC_SHARDED_T"] = "1"
        # Up to 5 minutes (two small compiles; slow only on a loaded CPU), keeping the e2e reserve.
        return _one_shot(cmd, env, max(min(300.0, self.left() - self._e2e_reserve() - 30), 30.0), self.log)

    # ---- b. speed
    def sj_python(self) -> str | None:
        if self.args.sj_python:
            return (
                self.args.sj_python
                if shutil.which(self.args.sj_python) or os.path.exists(self.args.sj_python)
                else None
            )
        if _has_module("spikingjelly") and _has_module("torch"):
            return sys.executable
        fallback = "/work/sjvenv/bin/python"
        return fallback if os.path.exists(fallback) else None

    def speed(self) -> dict:
        sz = self.sizes
        flops_note = (
            "analytic: 2 x multiply-adds of every convolution and the head, forward + input "
            "gradient (not for the stem) + kernel gradient; BN/LIF/optimizer not counted"
        )
        res: dict[str, Any] = dict(
            rows=[],
            flops_method=flops_note,
            peak_flops=H200_BF16_PEAK_FLOPS,
            memory_note=(
                "snnjax: XLA's compiled plan (temp + arguments + outputs - "
                "aliased); SpikingJelly: torch.cuda.max_memory_allocated over "
                "the timed steps (CPU: peak RSS of the worker)"
            ),
        )
        workers: list[tuple[str, str, Worker | None, str]] = []  # (framework, impl, worker, skip reason)
        workers.append(
            (
                "snnjax",
                "xla",
                self._start(
                    "snnjax",
                    [sys.executable, str(HERE / "device_check.py"), "--worker", "snnjax"],
                    self.env(XLA_PYTHON_CLIENT_MEM_FRACTION=".45"),
                ),
                "",
            )
        )
        sj = self.sj_python()
        for impl in sz["sj_impls"]:
            if sj is None:
                workers.append(
                    (
                        "spikingjelly",
                        impl,
                        None,
                        "skipped: no interpreter with spikingjelly and torch (--sj-python / $SJ_PYTHON)",
                    )
                )
                continue
            probe = _run_text([sj, "-c", "import spikingjelly, torch; print(torch.__version__)"], env=self.env())
            if not probe:
                workers.append(("spikingjelly", impl, None, f"skipped: {sj} cannot import spikingjelly + torch"))
                continue
            w = self._start(
                f"sj-{impl}",
                [sj, str(HERE / "device_check.py"), "--worker", "spikingjelly", "--neuron-impl", impl],
                self.env(),
            )
            workers.append(("spikingjelly", impl, w, ""))
        for fw, impl, w, reason in workers:  # wait for start-up (imports) before timing anything
            if w is not None:
                ready = w.get(timeout=min(120.0, max(self.left(), 1)))
                if not ready or not ready.get("ready"):
                    workers[workers.index((fw, impl, w, reason))] = (
                        fw,
                        impl,
                        None,
                        f"error: worker did not start ({w.dead_reason})",
                    )
        for t, batch in sz["cells"]:
            flops = resnet_train_flops(18, sz["width"], t, batch)["train_flops"]
            for fw, impl, w, reason in workers:
                dtypes = sz["snnjax_dtypes"] if fw == "snnjax" else sz["sj_dtypes"]
                for dtype in dtypes:
                    row = dict(
                        framework=fw, impl=impl, dtype=dtype, T=t, batch=batch, width=sz["width"], analytic_flops=flops
                    )
                    req = dict(width=sz["width"], T=t, batch=batch, dtype=dtype, steps=sz["steps"], warmup=sz["warmup"])
                    if w is None:
                        row["status"] = reason
                    elif w.dead_reason:
                        row["status"] = f"skipped: {w.name} worker stopped ({w.dead_reason})"
                    elif self.left() < self._e2e_reserve():
                        row["status"] = "skipped: time budget"
                    else:
                        self.say(f"speed {fw}/{impl} {dtype} T={t} B={batch}")
                        rec = w.ask(req, timeout=max(self.left() - self._e2e_reserve() + 30, 30))
                        row.update(self._speed_row(rec, w, flops))
                    res["rows"].append(row)
        for _, _, w, _ in workers:
            if w is not None:
                w.close()
        ok = [r for r in res["rows"] if r.get("status") == "ok"]
        res["status"] = "ok" if ok else "error: no speed row ran"
        return res

    def _e2e_reserve(self) -> float:
        """Seconds kept for the e2e run: the speed rows stop when no more than this is left."""
        return self.args.e2e_timeout_s + 5.0 if "e2e" in self.args.parts else 0.0

    def _start(self, name, cmd, env) -> Worker:
        self.say(f"start worker {name}: {' '.join(cmd[1:])}")
        return Worker(name, cmd, env, self.log)

    @staticmethod
    def _speed_row(rec: dict | None, w: Worker, flops: float) -> dict:
        if rec is None:
            return dict(status=f"error: {w.dead_reason or 'no answer'}")
        if "error" in rec:
            return dict(status=f"error: {rec['error'][:300]}")
        step = float(rec["step_s"])
        if rec.get("framework") == "snnjax":
            peak = (
                rec["xla_temp_bytes"]
                + rec["xla_arg_bytes"]
                + rec.get("xla_output_bytes", 0)
                - rec.get("xla_alias_bytes", 0)
            )
            impl_ran = "xla"
        else:
            peak = rec.get("peak_device_bytes") or rec.get("max_rss_bytes")
            impl_ran = rec.get("neuron_impl", "cpu" if rec.get("device") == "cpu" else "?")
        return dict(
            status="ok",
            step_s=step,
            step_times_s=rec.get("step_times_s"),
            images_T_per_s=rec["batch"] * rec["T"] / step,
            peak_mb=peak / 2**20 if peak else None,
            tflops_per_s=flops / step / 1e12,
            peak_fraction=flops / step / H200_BF16_PEAK_FLOPS,
            xla_flops=rec.get("xla_flops"),
            impl_ran=impl_ran,
            compile_s=rec.get("compile_s"),
            first_step_s=rec.get("first_step_s"),
            device=rec.get("device_kind") or rec.get("gpu") or rec.get("device"),
            loss=rec.get("loss"),
            version=rec.get("jax") or rec.get("torch"),
        )

    # ---- c. e2e
    def e2e(self) -> dict:
        timeout = min(self.args.e2e_timeout_s, self.left())
        if timeout < 20:
            return dict(status="skipped: time budget")
        workdir = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"snnjax_device_check_e2e_{os.getpid()}"
        shutil.rmtree(workdir, ignore_errors=True)
        spec, why = self._e2e_spec(str(workdir))
        res: dict[str, Any] = dict(
            config=spec["config"], overrides=spec["overrides"], fallback_reason=why, timeout_s=timeout
        )
        cmd = [sys.executable, str(HERE / "device_check.py"), "--worker", "e2e", "--worker-arg", json.dumps(spec)]
        env = self.env(JAX_PLATFORMS=self.platform)
        if spec.get("data_dir"):
            env["SNNJAX_DATA_DIR"] = spec["data_dir"]
        self.say(f"e2e {spec['config']} (timeout {timeout:.0f} s)")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout] and None, daemon=True).start()
        metrics = workdir / "metrics.jsonl"
        seen, epochs, summary = 0, [], None
        while True:
            done = proc.poll() is not None
            if metrics.exists():
                recs = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip().startswith("{")]
                for r in recs[seen:]:
                    if r.get("kind") == "epoch":
                        epochs.append(
                            dict(
                                stage=r["stage"],
                                epoch=r.get("epoch"),
                                at_s=round(time.monotonic() - t0, 2),
                                train_loss=r.get("train_loss"),
                                train_accuracy=r.get("train_accuracy"),
                                test_loss=r.get("test_loss"),
                                test_accuracy=r.get("test_accuracy"),
                            )
                        )
                seen = len(recs)
            if done or time.monotonic() - t0 > timeout:
                break
            time.sleep(0.5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            res["status"] = f"stopped after {timeout:.0f} s (time budget), {len(epochs)} epochs recorded"
        while not lines.empty():
            line = lines.get()
            if line and line.startswith("RESULT "):
                rec = json.loads(line[len("RESULT ") :])
                summary = rec.get("summary", summary)
        res["wall_s"] = time.monotonic() - t0
        # Epoch wall time: from one epoch record to the next of the same stage (training + evaluation).
        prev: dict[str, float] = {}
        for e in epochs:
            start = prev.get(e["stage"])
            e["epoch_wall_s"] = round(e["at_s"] - start, 2) if start is not None else None
            prev[e["stage"]] = e["at_s"]
        res["epochs"] = epochs
        if summary is not None:
            keep = (
                "stage",
                "dataset",
                "model",
                "time_steps",
                "epochs",
                "best_test_accuracy",
                "final_test_accuracy",
                "compile_time_s",
                "train_time_s",
                "train_images_per_s",
                "wall_time_s",
                "devices",
                "kd",
                "init",
            )
            res["summary"] = {k: summary.get(k) for k in keep if k in summary}
            if summary.get("train_time_s") and summary.get("epochs"):
                res["student_train_s_per_epoch"] = summary["train_time_s"] / summary["epochs"]
            res["status"] = "ok"
        elif "status" not in res:
            res["status"] = f"error: exit {proc.returncode} (see device_check.log)"
        shutil.rmtree(workdir, ignore_errors=True)
        return res

    def _e2e_spec(self, workdir: str) -> tuple[dict, str]:
        a = self.args
        if a.dry_run:
            return (
                dict(
                    config="configs/baseline.py:digits",
                    workdir=workdir,
                    overrides={
                        "model.width": 4,
                        "model.time_steps": 1,
                        "train.epochs": 1,
                        "train.progress_bar": False,
                        "train.tensorboard": False,
                        "data.batch_size": 64,
                    },
                ),
                "dry run: digits, width 4, T=1",
            )
        path, _, preset = a.e2e_config.partition(":")
        why = _preset_missing(path, preset)
        data_dir = _fashion_mnist_dir()
        if not why and "fashion_mnist" in preset and data_dir is None:
            why = "Fashion-MNIST files not found (.devdata/fashion_mnist, $SNNJAX_DATA_DIR, /usr/share/datasets)"
        if not why:
            ov = {"train.epochs": a.e2e_epochs, "train.progress_bar": False, "train.tensorboard": False}
            if "teacher" in _config_keys(path, preset):
                ov.update(
                    {
                        "teacher.train.epochs": a.e2e_teacher_epochs,
                        "teacher.train.progress_bar": False,
                        "teacher.train.tensorboard": False,
                    }
                )
            return dict(config=a.e2e_config, workdir=workdir, overrides=ov, data_dir=data_dir), ""
        # CIFAR-shaped synthetic data: the paper's Spiking ResNet-18, no teacher.
        return (
            dict(
                config="configs/baseline.py",
                workdir=workdir,
                overrides={
                    "data.name": "synthetic",
                    "data.options": {"image_shape": (32, 32, 3), "num_train": 12800, "num_test": 2560},
                    "train.epochs": a.e2e_epochs,
                    "train.progress_bar": False,
                    "train.tensorboard": False,
                },
            ),
            why,
        )

    # ---- all
    def run(self) -> dict:
        parts = self.args.parts
        self.say(f"out {self.out}, budget {self.args.budget_s:.0f} s, parts {parts}, dry run {self.args.dry_run}")
        if "tests" in parts:
            self.say("tests")
            self.result["tests"] = _guard(self.tests)
            self.say(f"tests: {self.result['tests'].get('status')}")
            self.result["sharded_check"] = _guard(self.sharded)
            self.say(f"sharded check: {self.result['sharded_check'].get('status')}")
            self.write()
        if "speed" in parts:
            self.result["speed"] = _guard(self.speed)
            self.write()
        if "e2e" in parts:
            self.result["e2e"] = _guard(self.e2e)
        self.result["meta"]["wall_s"] = time.monotonic() - self.t0
        self.result["meta"]["load_average_end"] = list(os.getloadavg())
        self.write()
        self.say(f"wrote {self.out / 'device_check.json'} and {self.out / 'device_check.md'}")
        return self.result

    def write(self) -> None:
        (self.out / "device_check.json").write_text(json.dumps(self.result, indent=1, default=repr) + "\n")
        (self.out / "device_check.md").write_text(markdown(self.result) + "\n")


def _guard(fn) -> dict:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - one part failing must not stop the others
        return dict(status=f"error: {type(e).__name__}: {e}"[:500], traceback=traceback.format_exc()[-3000:])


def _one_shot(cmd, env, timeout, log) -> dict:
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(status=f"error: timeout after {timeout:.0f} s")
    log.write(proc.stderr[-10000:] + "\n")
    recs = [json.loads(l[len("RESULT ") :]) for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not recs:
        return dict(status=f"error: exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return recs[-1]


def _preset_missing(path: str, preset: str) -> str:
    if not (ROOT / path).exists():
        return f"{path} not found"
    try:
        _config_keys(path, preset)
    except Exception as e:  # noqa: BLE001
        return f"{path}:{preset} not available here ({type(e).__name__}: {str(e)[:160]})"
    return ""


def _config_keys(path: str, preset: str) -> list[str]:
    code = (
        f"import importlib.util,json,sys;sys.path.insert(0,{str(ROOT)!r});"
        f"s=importlib.util.spec_from_file_location('c',{str(ROOT / path)!r});"
        f"m=importlib.util.module_from_spec(s);s.loader.exec_module(m);"
        f"print(json.dumps(list(m.get_config({preset or None!r}).keys())))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fashion_mnist_dir() -> str | None:
    """A folder the IDX loader finds Fashion-MNIST in (as $SNNJAX_DATA_DIR), if any."""
    for base in (ROOT / ".devdata", pathlib.Path(os.environ.get("SNNJAX_DATA_DIR", "/nonexistent"))):
        if (base / "fashion_mnist" / "train-images-idx3-ubyte.gz").exists():
            return str(base)
    if pathlib.Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        return ""  # the loader's Debian folder; no data dir needed
    return None


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _run_text(cmd, env=None) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _nvidia_smi() -> str:
    if not shutil.which("nvidia-smi"):
        return ""
    return _run_text(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])


# ----------------------------------------------------------------------------- Markdown


def _f(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def markdown(r: dict) -> str:
    m = r["meta"]
    lines = [
        f"# Device check ({'DRY RUN, CPU, tiny sizes' if m['dry_run'] else m['gpu']})",
        "",
        f"{m['date']}, host {m['host']}, {m['cpus']} CPUs, commit {m['git_commit']}, "
        f"wall {_f(m.get('wall_s'), '{:.0f}')} s of a {m['budget_s']:.0f} s budget, "
        f"load average {', '.join(f'{x:.1f}' for x in m['load_average'])}",
        "",
    ]
    if "tests" in r:
        t = r["tests"]
        lines += [
            "## a. Correctness on the device",
            "",
            "| check | status | passed | failed | skipped | time s |",
            "|---|---|---|---|---|---|",
            f"| pytest ({t.get('platform', '?')}): {', '.join(t.get('files', []))} | {t.get('status')} | "
            f"{t.get('passed', '-')} | {t.get('failed', '-')} | {t.get('skipped', '-')} | "
            f"{_f(t.get('duration_s'), '{:.0f}')} |",
        ]
        s = r.get("sharded_check", {})
        lines.append(
            f"| sharded step on {s.get('num_devices', '?')} x {s.get('device_kind', '?')} vs CPU | "
            f"{s.get('status')} | loss {_f(s.get('loss_device'), '{:.6f}')} vs {_f(s.get('loss_cpu'), '{:.6f}')}"
            f" | params max rel diff {_f(s.get('params_max_rel_diff'), '{:.1e}')} | | |"
        )
        if t.get("failures"):
            lines += ["", "Failed: " + ", ".join(f"`{f}`" for f in t["failures"][:30])]
        lines.append("")
    if "speed" in r:
        sp = r["speed"]
        lines += [
            "## b. Training step, CIFAR Spiking ResNet-18",
            "",
            f"Peak memory: {sp.get('memory_note', '')}. FLOPs: {sp.get('flops_method', '')}. "
            f"'of peak' = achieved FLOP/s / {sp.get('peak_flops', 0) / 1e12:.0f} TFLOP/s (dense bf16). "
            "'vs best SJ' = fastest SpikingJelly row of the same T, batch and precision class "
            "(fp32 vs fp32; bf16 vs AMP bf16/fp16) / this row.",
            "",
            "| T | batch | framework | LIF kernel | dtype | step ms | images*T/s | peak MB | TFLOP/s | of peak "
            "| vs best SJ | status |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        rows = sp.get("rows", [])
        for row in rows:
            best = _best_sj(rows, row)
            ratio = f"{best / row['step_s']:.2f}x" if best and row.get("status") == "ok" else "-"
            impl = row.get("impl_ran") or row["impl"]
            if row["framework"] == "spikingjelly" and row.get("impl_ran") and row["impl"] != row.get("impl_ran"):
                impl = f"{row['impl']} -> {row['impl_ran']}"
            status = row.get("status", "")
            lines.append(
                f"| {row['T']} | {row['batch']} | {row['framework']} | {impl} | {row['dtype']} | "
                f"{_f(row.get('step_s') and row['step_s'] * 1e3, '{:.1f}')} | "
                f"{_f(row.get('images_T_per_s'), '{:.0f}')} | {_f(row.get('peak_mb'), '{:.0f}')} | "
                f"{_f(row.get('tflops_per_s'), '{:.2f}')} | {_f(row.get('peak_fraction'), '{:.1%}')} | "
                f"{ratio} | {'ok' if status == 'ok' else status[:120]} |"
            )
        lines.append("")
    if "e2e" in r:
        e = r["e2e"]
        lines += [
            "## c. End-to-end run",
            "",
            f"`{e.get('config')}` with {e.get('overrides')}; "
            f"{'fallback: ' + e['fallback_reason'] + '; ' if e.get('fallback_reason') else ''}"
            f"status {e.get('status')}, wall {_f(e.get('wall_s'), '{:.0f}')} s",
            "",
            "| stage | epoch | epoch wall s | train loss | train acc | test acc |",
            "|---|---|---|---|---|---|",
        ]
        for ep in e.get("epochs", []):
            lines.append(
                f"| {ep['stage']} | {ep['epoch']} | {_f(ep.get('epoch_wall_s'), '{:.1f}')} | "
                f"{_f(_num(ep.get('train_loss')), '{:.3f}')} | {_f(_num(ep.get('train_accuracy')), '{:.3f}')} | "
                f"{_f(_num(ep.get('test_accuracy')), '{:.4f}')} |"
            )
        if e.get("summary"):
            s = e["summary"]
            lines += [
                "",
                f"Student: best test accuracy {_f(_num(s.get('best_test_accuracy')), '{:.4f}')}, "
                f"{_f(s.get('train_images_per_s'), '{:.0f}')} training images/s, "
                f"compile {_f(s.get('compile_time_s'), '{:.0f}')} s, "
                f"train s/epoch {_f(e.get('student_train_s_per_epoch'), '{:.1f}')}",
            ]
        lines.append("")
    return "\n".join(lines)


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _best_sj(rows: list[dict], row: dict) -> float | None:
    if row["framework"] != "snnjax":
        return None
    low = row["dtype"] != "float32"
    times = [
        r["step_s"]
        for r in rows
        if r["framework"] == "spikingjelly"
        and r.get("status") == "ok"
        and r["T"] == row["T"]
        and r["batch"] == row["batch"]
        and (r["dtype"] != "float32") == low
    ]
    return min(times) if times else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "snnjax":
        snnjax_worker()
    elif args.worker == "spikingjelly":
        spikingjelly_worker(args.neuron_impl)
    elif args.worker == "sharded":
        sharded_worker()
    elif args.worker == "e2e":
        e2e_worker(args.worker_arg)
    else:
        Run(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
