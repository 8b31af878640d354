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
