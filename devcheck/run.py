"""The device check's parent process: runs the parts in order within the time budget, writing results as it goes."""

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

from devcheck import plan
from devcheck.flops import resnet_train_flops
from devcheck.plan import DRY, ENTRY, FULL, H200_BF16_PEAK_FLOPS, ROOT
from devcheck.procs import Worker, _has_module, _nvidia_smi, _one_shot, _run_text
from devcheck.report import markdown


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
        # Several processes share the device (idle speed workers while the tests run): no preallocation.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
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
    def tests(self, selections) -> dict:
        """Run the selected correctness tests on the device (the CPU in a dry run) in one pytest process."""
        files = plan.files(selections)
        k = plan.k_expression(selections)
        present = [f for f in files if (ROOT / f).exists()]
        missing = sorted(set(files) - set(present))
        res: dict[str, Any] = dict(platform=self.platform, files=present, k=k, missing_files=missing)
        if not present:
            res["status"] = "skipped: none of the test files exists"
            return res
        workers = self.args.test_workers if self.args.test_workers is not None else (0 if self.args.dry_run else 4)
        cmd = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-o", "addopts=", *present, "-k", k]
        env = self.env(JAX_PLATFORMS=self.platform)
        if workers > 1 and len(present) > 1 and _has_module("xdist"):
            cmd += ["-n", str(workers)]
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
        if any(k and "sharded" in k for _, k in selections):
            res["note"] = (
                f"{plan.SHARDED_TEST} asserts 8 devices (conftest's fake CPU devices); with fewer devices "
                "its failure is expected; the sharded check covers the device"
            )
        return res

    def sharded(self) -> dict:
        cmd = [sys.executable, *ENTRY, "--worker", "sharded"]
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

    def speed_table(self) -> dict:
        """The speed part's header; rows are appended by :meth:`speed_rows`."""
        return dict(
            rows=[],
            status="running",
            flops_method=(
                "analytic: 2 x multiply-adds of every convolution and the head, forward + input "
                "gradient (not for the stem) + kernel gradient; BN/LIF/optimizer not counted"
            ),
            peak_flops=H200_BF16_PEAK_FLOPS,
            memory_note=(
                "snnjax: XLA's compiled plan (temp + arguments + outputs - "
                "aliased); SpikingJelly: torch.cuda.max_memory_allocated over "
                "the timed steps (CPU: peak RSS of the worker)"
            ),
        )

    def start_speed_workers(self) -> list[tuple[str, str, Worker | None, str]]:
        """One long-lived worker per framework / SpikingJelly kernel: ``(framework, impl, worker, skip reason)``.

        Started before the quick tests so that their imports overlap with the tests.
        """
        workers: list[tuple[str, str, Worker | None, str]] = []
        snnjax_env = self.env(XLA_PYTHON_CLIENT_MEM_FRACTION=".45", XLA_PYTHON_CLIENT_PREALLOCATE="true")
        cmd = [sys.executable, *ENTRY, "--worker", "snnjax"]
        workers.append(("snnjax", "xla", self._start("snnjax", cmd, snnjax_env), ""))
        sj = self.sj_python()
        for impl in self.sizes["sj_impls"]:
            if sj is None:
                why = "skipped: no interpreter with spikingjelly and torch (--sj-python / $SJ_PYTHON)"
                workers.append(("spikingjelly", impl, None, why))
                continue
            probe = _run_text([sj, "-c", "import spikingjelly, torch; print(torch.__version__)"], env=self.env())
            if not probe:
                workers.append(("spikingjelly", impl, None, f"skipped: {sj} cannot import spikingjelly + torch"))
                continue
            cmd = [sj, *ENTRY, "--worker", "spikingjelly", "--neuron-impl", impl]
            workers.append(("spikingjelly", impl, self._start(f"sj-{impl}", cmd, self.env()), ""))
        return workers

    def await_ready(self, workers: list) -> list:
        """Wait for each worker's start-up (imports) before timing anything; a silent one becomes a skip."""
        ready_workers = []
        for fw, impl, w, reason in workers:
            if w is not None:
                ready = w.get(timeout=min(120.0, max(self.left(), 1)))
                if not ready or not ready.get("ready"):
                    w, reason = None, f"error: worker did not start ({w.dead_reason})"
            ready_workers.append((fw, impl, w, reason))
        return ready_workers

    def speed_rows(self, workers: list, only: list | None = None) -> None:
        """Measure the speed rows not measured yet (``only``: just these ``(T, batch, framework, dtype)``),
        writing the results after every row so that a closed window still returns them."""
        sz, table = self.sizes, self.result["speed"]
        done = {(r["T"], r["batch"], r["framework"], r["impl"], r["dtype"]) for r in table["rows"]}
        for t, batch in sz["cells"]:
            flops = resnet_train_flops(18, sz["width"], t, batch)["train_flops"]
            for fw, impl, w, reason in workers:
                dtypes = sz["snnjax_dtypes"] if fw == "snnjax" else sz["sj_dtypes"]
                for dtype in dtypes:
                    if (t, batch, fw, impl, dtype) in done:
                        continue
                    if only is not None and (t, batch, fw, dtype) not in only:
                        continue
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
                    table["rows"].append(row)
                    self.write()
        ok = [r for r in table["rows"] if r.get("status") == "ok"]
        table["status"] = "ok" if ok else "error: no speed row ran"

    @staticmethod
    def close_workers(workers: list) -> None:
        for _, _, w, _ in workers:
            if w is not None:
                w.close()

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
        cmd = [sys.executable, *ENTRY, "--worker", "e2e", "--worker-arg", json.dumps(spec)]
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
                    config=plan.DRY_E2E_CONFIG,
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
                config=plan.FALLBACK_E2E_CONFIG,
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
        """Quick results first (they stand on their own if the window closes), then the rest.

        Order: quick tests, one T=4 speed row per framework, the sharded check, the full tests
        (not in a dry run), the remaining speed rows, the e2e run. ``device_check.{json,md}`` are
        rewritten after every step.
        """
        parts = self.args.parts
        self.say(f"out {self.out}, budget {self.args.budget_s:.0f} s, parts {parts}, dry run {self.args.dry_run}")
        self.write()
        workers = self.start_speed_workers() if "speed" in parts else []
        try:
            if "tests" in parts:
                self.say("quick tests")
                self.result["quick_tests"] = _guard(lambda: self.tests(plan.QUICK_TESTS))
                self.say(f"quick tests: {self.result['quick_tests'].get('status')}")
                self.write()
            if "speed" in parts:
                self.result["speed"] = self.speed_table()
                workers = self.await_ready(workers)
                self._guarded_rows(workers, only=self.sizes["quick"])
            if "tests" in parts:
                self.result["sharded_check"] = _guard(self.sharded)
                self.say(f"sharded check: {self.result['sharded_check'].get('status')}")
                self.write()
                if self.args.dry_run:
                    self.result["tests"] = dict(status="skipped: a dry run runs the quick tests only")
                else:
                    self.say("tests")
                    self.result["tests"] = _guard(lambda: self.tests(plan.TESTS))
                    self.say(f"tests: {self.result['tests'].get('status')}")
                self.write()
            if "speed" in parts:
                self._guarded_rows(workers, only=None)
        finally:
            self.close_workers(workers)
        if "e2e" in parts:
            self.result["e2e"] = _guard(self.e2e)
        self.result["meta"]["wall_s"] = time.monotonic() - self.t0
        self.result["meta"]["load_average_end"] = list(os.getloadavg())
        self.write()
        self.say(f"wrote {self.out / 'device_check.json'} and {self.out / 'device_check.md'}")
        return self.result

    def _guarded_rows(self, workers: list, only: list | None) -> None:
        try:
            self.speed_rows(workers, only=only)
        except Exception as e:  # noqa: BLE001 - one part failing must not stop the others
            self.result["speed"]["status"] = f"error: {type(e).__name__}: {e}"[:500]
            self.result["speed"]["traceback"] = traceback.format_exc()[-3000:]
        self.write()

    def write(self) -> None:
        (self.out / "device_check.json").write_text(json.dumps(self.result, indent=1, default=repr) + "\n")
        (self.out / "device_check.md").write_text(markdown(self.result) + "\n")


def _guard(fn) -> dict:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - one part failing must not stop the others
        return dict(status=f"error: {type(e).__name__}: {e}"[:500], traceback=traceback.format_exc()[-3000:])


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
