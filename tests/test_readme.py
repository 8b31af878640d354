"""The README's code must run as written."""

import os
import re

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_library_in_a_page_snippet_runs():
    text = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"## The library in a page\n\n```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["spikes"].shape == (8, 4, 32)
    assert scope["logits"].shape == (2, 10)
    assert np.isfinite(float(scope["loss"]))
    assert scope["report"].transplanted > 0


def test_quick_start_commands_name_existing_files():
    text = open(os.path.join(ROOT, "README.md")).read()
    for config in set(re.findall(r"--config (configs/\w+\.py)", text)):
        assert os.path.exists(os.path.join(ROOT, config)), config
    assert "python -m pytest -q -n 2 tests" in open(os.path.join(ROOT, ".ci", "run")).read()


def test_multi_process_promise_names_the_device_count_the_test_compares_against():
    # docs/running.md promises equality with a one-process run of the SAME number of devices, which is what
    # tests/test_multihost.py compares against; not with a one-device run (which differs, by design).
    text = open(os.path.join(ROOT, "docs", "running.md")).read()
    promise = re.search(r"as one process with the same number of devices \((\d+)\)", text)
    assert promise, "docs/running.md must say which one-process run two processes equal"
    multihost = open(os.path.join(ROOT, "tests", "test_multihost.py")).read()
    single = re.search(r"def run_single\(.*?devices=(\d+)\)", multihost)
    assert single and promise.group(1) == single.group(1)
    assert "Not as a one-device run" in text


def test_relative_links_in_readme_and_docs_point_to_files_that_exist():
    broken = []
    pages = [os.path.join(ROOT, "README.md")] + [
        os.path.join(ROOT, "docs", n) for n in sorted(os.listdir(os.path.join(ROOT, "docs"))) if n.endswith(".md")
    ]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", open(page).read()):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(page), target.split("#", 1)[0]))
            if not os.path.exists(path):
                broken.append(f"{os.path.relpath(page, ROOT)} -> {target}")
    assert not broken, broken


def test_readme_is_a_front_door():
    assert len(open(os.path.join(ROOT, "README.md")).read().splitlines()) <= 200
