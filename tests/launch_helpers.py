"""Helpers shared by the end-to-end tests: run ``launch.py`` in a subprocess, read a stage's final state.

Not a test module: test modules import it instead of importing one another.
"""

import os
import subprocess
import sys

import orbax.checkpoint as ocp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config.model.width=4", "--config.train.progress_bar=False", "--config.train.tensorboard=False"]


def python_with_file_size_cap(max_bytes: int) -> list[str]:
    """The start of a command line: this Python with every file it writes capped at ``max_bytes``
    (RLIMIT_FSIZE), so that a save fails as on a full disk. Set in a fresh interpreter that then execs
    the rest of the command: a ``preexec_fn`` would run in a fork of the multithreaded JAX test process,
    which may deadlock."""
    cap = (
        f"import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({max_bytes}, {max_bytes})); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    return [sys.executable, "-c", cap]


def launch(config, workdir, *overrides, check=True, background=False):
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), f"--config={config}", f"--workdir={workdir}", *overrides]
    if background:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"launch failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


def final_params(workdir, stage="train"):
    ckdir = os.path.join(workdir, "checkpoints", stage)
    step = max(int(s) for s in os.listdir(ckdir) if s.isdigit())
    restored = ocp.StandardCheckpointer().restore(os.path.join(ckdir, str(step), "state"))
    return step, restored


def analyze(workdir, out_dir=None):
    """``python -m snnjax.analysis --workdir`` in-process on a finished run: its ``analysis.json`` dict."""
    import io

    from snnjax.analysis.workdir import analyze_workdir

    return analyze_workdir(
        str(workdir), num_examples=16, batch_size=16, out_dir=str(out_dir or workdir), stream=io.StringIO()
    )
