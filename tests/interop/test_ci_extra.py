"""The interop tests skip where torch is absent, so CI must install it: this guard fails if it stops."""

import os
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_ci_installs_the_pinned_cpu_torch_extra():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["optional-dependencies"]["torch"][0] == "torch==2.13.0"  # the CPU build; newer pulls CUDA
    assert not any(dep.startswith("torch") for dep in project["dependencies"])  # never a core dependency
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert "-e '.[test,torch]'" in f.read()


def test_importing_snnjax_interop_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, snnjax.interop.torch, snnjax.interop.source, snnjax.methods.idsnn.pipeline; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
