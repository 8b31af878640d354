"""The constraints (lock) file, the README's install commands and CI must not drift apart."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PINNED_IN_README = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint")


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def _pins() -> dict[str, str]:
    pins = {}
    for line in _read("constraints.txt").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    return pins


def _requirement_names(text: str) -> set[str]:
    """Distribution names of the ``dependencies`` and the ``test`` extra in ``pyproject.toml``."""
    import tomllib

    project = tomllib.loads(text)["project"]
    names = set()
    for req in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        names.add(re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()))
    return names


def test_every_dependency_is_pinned_exactly():
    pins = _pins()
    missing = sorted(_requirement_names(_read("pyproject.toml")) - set(pins))
    assert not missing, f"pin these in constraints.txt: {missing}"
    assert "snnjax" not in pins and "torch" not in pins


def test_readme_and_ci_install_with_the_lock_file_and_quote_its_versions():
    readme, ci = _read("README.md"), _read(".ci", "run")
    installs = [line for line in readme.splitlines() if re.search(r"pip install .*-e '?\.", line)]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    # CI installs exactly what the README's test command installs (same extras, same lock file).
    test_install = next(line for line in installs if "[test" in line)
    extras = re.search(r"-e '(\.\[[^\]]*\])'", test_install).group(1)
    assert f"-c constraints.txt -e '{extras}'" in ci, (extras, test_install)
    quoted = re.search(r"tested with: ([^)]*)\)", readme.replace("\n", " ")).group(1)
    pins = _pins()
    for name in PINNED_IN_README:
        assert f"{name} {pins[name]}" in quoted, f"README says {quoted!r}; constraints.txt pins {name}=={pins[name]}"


def test_accelerator_extras_bring_the_matching_jax():
    import tomllib

    extras = tomllib.loads(_read("pyproject.toml"))["project"]["optional-dependencies"]
    readme = _read("README.md")
    for extra in ("cuda12", "cuda13", "tpu"):
        assert extras[extra] == [f"jax[{extra}]"]
        assert f"-e '.[{extra}]'" in readme
