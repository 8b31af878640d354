"""An unwritable HOME (a service account's ``HOME=/nonexistent``) adds no matplotlib warnings: snnjax
points ``MPLCONFIGDIR`` at a temporary folder before matplotlib is imported."""

from __future__ import annotations

import os
import subprocess
import sys

# Draws through every snnjax module that imports matplotlib; absl's handler (installed by the
# launcher) is what turned matplotlib's log warnings into extra lines on stderr.
_CHILD = """
import os, sys
from absl import logging as absl_logging
absl_logging.use_absl_handler()
from snnjax.train import metric_writer
from snnjax.analysis import plots
from snnjax.methods.idsnn import ablation
out = sys.argv[1]
records = [dict(stage="train", kind="epoch", step=1, epoch=1, train_loss=1.0, test_loss=1.0,
                train_accuracy=0.5, test_accuracy=0.5)]
metric_writer.plot_curves(records, os.path.join(out, "curves.png"))
plots._pyplot()
ablation.plot_curves({"idsnn": {0: {"curve": {1: 0.5, 2: 0.6}}}}, os.path.join(out, "ablation.png"))
print(os.environ.get("MPLCONFIGDIR") or "unset")
"""


def _run(tmp_path, home: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env["HOME"] = home
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )


def test_unwritable_home_adds_no_matplotlib_warning(tmp_path):
    # A HOME below a regular file cannot be created even by root (HOME=/nonexistent can be, by root).
    (tmp_path / "file").write_text("")
    proc = _run(tmp_path, str(tmp_path / "file" / "home"))
    assert proc.returncode == 0, proc.stderr
    assert "matplotlib" not in proc.stderr.lower() and proc.stderr == "", proc.stderr
    config_dir = proc.stdout.strip()
    assert os.path.basename(config_dir).startswith("snnjax-matplotlib-")
    assert not os.path.exists(config_dir)  # removed at exit
    assert (tmp_path / "curves.png").stat().st_size > 1000 and (tmp_path / "ablation.png").exists()


def test_writable_home_is_left_to_matplotlib(tmp_path):
    proc = _run(tmp_path, str(tmp_path / "home"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.strip() == "unset"
    assert (tmp_path / "home" / ".config" / "matplotlib").is_dir()
