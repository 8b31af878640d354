"""Parent-side handles on worker processes and small subprocess helpers."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading

from devcheck.plan import ROOT


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
