"""The wheel carries the launcher and the configs: built here, installed into a fresh virtual
environment outside the checkout, ``python -m snnjax.launch --config idsnn.py:digits`` runs the IDSNN
pipeline (tiny sizes) from a directory that holds no configs/.

The fresh venv has no pip and no dependencies of its own: a ``.pth`` file points it at the test
environment's site-packages (which holds jax & co., but no snnjax files: that one is an editable
install whose finder such a path entry does not load), so the wheel is installed with ``--no-deps``
in seconds and without network access beyond what building the wheel needs.
"""

import glob
import json
import os
import subprocess
import sys
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_IDSNN = [
    "--config.model.width=4",
    "--config.model.time_steps=2",
    "--config.data.batch_size=256",
    "--config.train.epochs=1",
    "--config.train.progress_bar=False",
    "--config.train.tensorboard=False",
    "--config.teacher.model.name=resnet18",
    "--config.teacher.model.width=4",
    "--config.teacher.train.epochs=1",
    "--config.teacher.train.progress_bar=False",
    "--config.teacher.train.tensorboard=False",
]


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_idsnn_by_builtin_config_name(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), ROOT],
        check=True,
        timeout=600,
        cwd=tmp_path,
    )
    (wheel,) = glob.glob(str(dist / "snnjax-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with open(os.path.join(purelib, "test_env.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], check=True, timeout=300)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [python, "-c", "import snnjax.launch as l; print(l.__file__); print(l.configs_dir())"],
        cwd=outside,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(path.startswith(purelib) for path in where), where  # the installed copy, not the checkout
    proc = subprocess.run(
        [python, "-m", "snnjax.launch", "--config=idsnn.py:digits", "--workdir=run", *TINY_IDSNN],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((outside / "run" / "summary.json").read_text())
    assert summary["pipeline"] == "idsnn" and summary["init"] and 0.0 <= summary["best_test_accuracy"] <= 1.0
    assert (outside / "run" / "transplant_report.txt").exists()
