"""Package layout that pyproject.toml alone cannot express: the top-level ``configs/`` directory ships
inside the package as ``snnjax.configs`` (so ``python -m snnjax.launch --config idsnn.py:digits``
works from a wheel), while the repository keeps ``configs/`` at the top level. Everything else is in
pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["snnjax", "snnjax.*"]) + ["snnjax.configs"],
    package_dir={"snnjax.configs": "configs"},
)
