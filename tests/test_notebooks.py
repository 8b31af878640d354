"""The Colab notebooks run top to bottom at tiny size (SNNJAX_NOTEBOOK_SMOKE=1) and are stored stripped."""

import os
import pathlib
import re
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

COLAB = pathlib.Path(__file__).resolve().parent.parent / "colab"
NOTEBOOKS = ("quickstart", "neurons_and_surrogates", "transplant", "tpu_gpu_cifar")
CELL_TIMEOUT_S = 300


def _kernel_env() -> dict[str, str]:
    """The test process's environment, in smoke mode, on ONE CPU device like a plain Colab CPU runtime
    (conftest's 8 fake devices would only slow the notebooks down)."""
    env = dict(os.environ, SNNJAX_NOTEBOOK_SMOKE="1", JAX_PLATFORMS="cpu")
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")).strip()
    if flags:
        env["XLA_FLAGS"] = flags
    else:
        env.pop("XLA_FLAGS", None)
    return env


def test_all_notebooks_are_listed_and_stored_without_outputs():
    assert sorted(p.stem for p in COLAB.glob("*.ipynb")) == sorted(NOTEBOOKS)
    for name in NOTEBOOKS:
        book = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
        nbformat.validate(book)
        code = [c for c in book.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: strip the outputs"
        # The first cell installs snnjax only when it is not importable.
        assert 'find_spec("snnjax") is None' in code[0].source, name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name):
    book = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(COLAB)}}
    )
    start = time.perf_counter()
    client.execute(env=_kernel_env())  # raises CellExecutionError with the traceback on any failure
    elapsed = time.perf_counter() - start
    images = sum(
        "image/png" in out.get("data", {}) for cell in book.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert images >= 1, f"{name} showed no plot"
    assert elapsed < 300, f"{name} took {elapsed:.0f} s; keep the smoke settings tiny"
