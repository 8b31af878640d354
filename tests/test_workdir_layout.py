"""The workdir layout (:mod:`snnjax.workdir_layout`): where each file of a run lands, and that no
other module of ``snnjax/`` or ``benchmarks/`` spells one of those names itself."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys

from snnjax import workdir_layout as layout

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYOUT_FILE = os.path.join(ROOT, "snnjax", "workdir_layout.py")


def test_every_path_of_a_run_is_where_it_always_was():
    w = "/runs/r"
    assert {
        "checkpoints": layout.checkpoints(w),
        "stage_checkpoints": layout.stage_checkpoints(w, "teacher"),
        "stage_summary": layout.stage_summary(w, "teacher"),
        "summary": layout.summary(w),
        "curves": layout.curves(w),
        "metrics": layout.metrics(w),
        "tensorboard": layout.tensorboard(w, "student"),
        "finished_config": layout.finished_config(w),
        "log": layout.log(w),
        "lock": layout.lock(w),
        "conversion": layout.conversion(w),
        "transfer_report": layout.transfer_report(w),
        "transplant_report": layout.transplant_report(w),
        "torch_report": layout.torch_report(w, "teacher"),
        "analysis": layout.analysis(w),
    } == {
        "checkpoints": "/runs/r/checkpoints",
        "stage_checkpoints": "/runs/r/checkpoints/teacher",
        "stage_summary": "/runs/r/teacher_summary.json",
        "summary": "/runs/r/summary.json",
        "curves": "/runs/r/curves.png",
        "metrics": "/runs/r/metrics.jsonl",
        "tensorboard": "/runs/r/tensorboard/student",
        "finished_config": "/runs/r/run_config.json",
        "log": "/runs/r/snnjax.log",
        "lock": "/runs/r/.snnjax.lock",
        "conversion": "/runs/r/conversion.json",
        "transfer_report": "/runs/r/transfer_report.txt",
        "transplant_report": "/runs/r/transplant_report.txt",
        "torch_report": "/runs/r/teacher_torch_report.txt",
        "analysis": "/runs/r/analysis.json",
    }


def test_layout_imports_the_standard_library_only():
    with open(LAYOUT_FILE, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_workdir_lock_loaded_from_its_file_finds_the_lock_without_jax():
    """As ``launch.py`` loads it before JAX: ``workdir_lock`` then loads the layout from its file too."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('_snnjax_standalone_workdir_lock', {os.path.join(ROOT, 'snnjax', 'train', 'workdir_lock.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m)\n"
        "print(m.workdir_layout.lock('/w'), 'jax' in sys.modules, 'snnjax' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.split() == ["/w/.snnjax.lock", "False", "False"]


def test_workdir_lock_imported_from_the_package_uses_the_package_layout():
    from snnjax.train import workdir_lock

    assert workdir_lock.workdir_layout is layout


# ---------------------------------------------------------------------------------------------
# No second spelling: the names of the layout appear in code (not prose) of workdir_layout.py only
# ---------------------------------------------------------------------------------------------

# A path spelled in a string: a file name of the layout at the start of a constant or after a "/"
# (``"summary.json"``, ``f"{workdir}/summary.json (..."``, ``f"{stage}_summary.json"``), or a folder
# name next to a "/" (``f"{workdir}/checkpoints"``) or given to ``os.path.join`` / pathlib's ``/``
# alone. Prose that names a file (``"checkpoints, logs and summary.json"``) and config keys
# (``("train", "tensorboard")``, ``keep_checkpoints``) are not paths.
FILE_NAMES = (
    layout.SUMMARY_FILE,
    layout.CURVES_FILE,
    layout.METRICS_FILE,
    layout.FINISHED_CONFIG_FILE,
    layout.LOG_FILE,
    layout.LOCK_FILE,
    layout.CONVERSION_FILE,
    layout.TRANSFER_REPORT_FILE,
    layout.TRANSPLANT_REPORT_FILE,
    layout.ANALYSIS_FILE,
)
SUFFIXES = (layout.STAGE_SUMMARY_SUFFIX, layout.TORCH_REPORT_SUFFIX)  # after a stage name
DIR_NAMES = (layout.CHECKPOINTS_DIR, layout.TENSORBOARD_DIR)
_FILE = re.compile(
    r"(?:^|(?<=[/\\]))(?:"
    + "|".join([re.escape(n) for n in FILE_NAMES] + [r"\w*" + re.escape(s) for s in SUFFIXES])
    + r")(?![\w-])"
)
_DIRS = "|".join(re.escape(n) for n in DIR_NAMES)
_DIR = re.compile(rf"(?:(?<=[/\\])(?:{_DIRS})(?![\w-]))|(?:^(?:{_DIRS})(?=[/\\]))")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _spells(value: str, joined: bool) -> bool:
    return bool(_FILE.search(value) or _DIR.search(value) or (joined and value in DIR_NAMES))


def layout_spellings(source: str) -> list[tuple[int, str]]:
    """``(line, constant)`` of each string constant in ``source`` (code, not docstrings) that spells a
    name of the workdir layout."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    joined = set()
    for node in ast.walk(tree):  # os.path.join(..., "checkpoints", ...), pathlib's  p / "checkpoints"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join":
            joined |= {id(a) for a in node.args}
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            joined |= {id(node.left), id(node.right)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if _spells(node.value, id(node) in joined):
                found.append((node.lineno, node.value))
    return sorted(found)


def _python_files(*folders: str) -> list[str]:
    out = []
    for folder in folders:
        for directory, subdirs, files in os.walk(os.path.join(ROOT, folder)):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            out += [os.path.join(directory, f) for f in sorted(files) if f.endswith(".py")]
    return out


def test_no_module_but_the_layout_spells_a_workdir_path():
    offenders = []
    for path in _python_files("snnjax", "benchmarks"):
        if os.path.samefile(path, LAYOUT_FILE):
            continue
        with open(path, encoding="utf-8") as f:
            for line, value in layout_spellings(f.read()):
                offenders.append(f"{os.path.relpath(path, ROOT)}:{line}: {value!r}")
    assert not offenders, "build these paths with snnjax.workdir_layout:\n" + "\n".join(offenders)


def test_the_spelling_check_catches_what_it_should_and_not_prose():
    source = '''
"""A docstring may say summary.json and checkpoints/<stage>."""
import os
def f(workdir, stage):
    """So may this one: workdir/metrics.jsonl."""
    # and a comment: .snnjax.lock
    a = os.path.join(workdir, "summary.json")
    b = os.path.join(workdir, "checkpoints", stage)
    c = f"{workdir}/checkpoints/stdb"
    d = f"{stage}_summary.json"
    e = workdir / "tensorboard"
    ok = ("train", "tensorboard"), "no checkpoints in", "--config.train.tensorboard=False", "keep_checkpoints"
    g = ".snnjax.lock"
    h = f"summary in {workdir}/summary.json (nothing to do)"
    i = f"no checkpoints under {workdir}/checkpoints. Fix: ..."
    prose = "Directory for checkpoints, logs and summary.json.", "(cached in conversion.json)"
'''
    assert [value for _, value in layout_spellings(source)] == [
        "summary.json",
        "checkpoints",
        "/checkpoints/stdb",
        "_summary.json",
        "tensorboard",
        ".snnjax.lock",
        "/summary.json (nothing to do)",
        "/checkpoints. Fix: ...",
    ]
    # The layout module itself spells every name (the check reads what it would catch elsewhere).
    with open(LAYOUT_FILE, encoding="utf-8") as f:
        spelled = {value for _, value in layout_spellings(f.read())}
    assert set(FILE_NAMES) <= spelled and set(SUFFIXES) <= spelled


def test_layout_module_loads_alone():
    spec = importlib.util.spec_from_file_location("_layout_alone", LAYOUT_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.lock("w") == os.path.join("w", ".snnjax.lock")
