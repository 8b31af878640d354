"""tests/slow_tests.txt names tests that exist, and the marker reaches them (the quick subset's list)."""

import ast
import os
import subprocess
import sys

from conftest import SLOW_LIST, slow_node_ids

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _test_names(path: str) -> set[str]:
    tree = ast.parse(open(path).read())
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_listed_slow_test_exists():
    missing = []
    for node in sorted(slow_node_ids()):
        path, _, name = node.partition("::")
        if not os.path.exists(os.path.join(ROOT, path)) or name.split("::")[-1] not in _test_names(
            os.path.join(ROOT, path)
        ):
            missing.append(node)
    assert not missing, f"{SLOW_LIST} names tests that do not exist (renamed or removed?): {missing}"


def test_listed_tests_are_deselected_by_not_slow():
    node = sorted(slow_node_ids())[0]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            node.split("::")[0],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert node.split("::")[-1] not in out, out[-2000:]
