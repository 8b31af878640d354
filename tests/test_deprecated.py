"""Old import paths (0.1) keep working for one release: same module objects, with a DeprecationWarning."""

import os
import subprocess
import sys

import pytest

from snnjax import _deprecated

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_old_path_is_the_new_module_and_warns():
    # A fresh interpreter: the shims warn on first import only.
    code = f"""
import importlib, warnings
moved = {dict(_deprecated.MOVED)!r}
for old, new in moved.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new), (old, new)
    if old.count(".") == 1 or old == "snnjax.models.vgg":   # a shim module (its submodules are aliases)
        assert any(issubclass(w.category, DeprecationWarning) for w in caught), old
from snnjax import transplant, pipelines
from snnjax.methods.idsnn import transplant as new_transplant
assert transplant is new_transplant and pipelines.get("idsnn") is importlib.import_module(
    "snnjax.methods.idsnn.pipeline").run
import snnjax.snn2ann.models, snnjax.methods.snn2ann.models
assert snnjax.snn2ann.models is snnjax.methods.snn2ann.models   # no second copy of the module
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.parametrize("module", ["snnjax.ablation", "snnjax.methods.idsnn.ablation"])
def test_ablation_entry_point_runs_from_the_old_and_the_new_path(module):
    proc = subprocess.run(
        [sys.executable, "-m", module, "--helpfull"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # absl's --helpfull exits with 1
    assert "--seeds" in proc.stdout and "--arms" in proc.stdout and "Traceback" not in proc.stderr
