"""Run a snnjax pipeline from a config file: ``python -m snnjax.launch`` (or ``launch.py`` in a checkout).

    python -m snnjax.launch --config idsnn.py:digits --workdir /tmp/idsnn
    python -m snnjax.launch --config configs/idsnn.py --config.model.time_steps=6 --workdir runs/idsnn_c10

``--config`` is a config file (``path.py[:preset]``) or the name of a built-in one (``idsnn.py:digits``,
``idsnn:digits``): the files of the repository's ``configs/`` directory ship inside the package as
``snnjax/configs/`` (see :func:`configs_dir`).

Writes ``WORKDIR/metrics.jsonl``, TensorBoard files, checkpoints and, at the end,
``WORKDIR/summary.json``. Started again with the same ``--workdir``, a run resumes from its latest
checkpoint. Multi-process runs (TPU pod slices, several GPU hosts, several processes on one machine):
run the same command in every process; see :mod:`snnjax.train.distributed` for the environment
variables read. Only process 0 writes logs and summaries; every process takes part in checkpoints.
"""

from __future__ import annotations

import os
import pathlib
import sys

from snnjax import runtime

# Before anything starts JAX's CPU backend: multi-threaded Eigen convolutions (snnjax/runtime.py).
runtime.use_eigen_convolutions()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_FLAGS: dict[str, flags.FlagHolder] = {}


def define_flags() -> None:
    """``--config``, ``--workdir``, ``--compilation_cache`` (defined on first use, not at import, so that
    importing this module, e.g. for :func:`configs_dir`, never clashes with another program's flags)."""
    if _FLAGS:
        return
    _FLAGS["config"] = config_flags.DEFINE_config_file(
        "config",
        None,
        "Config file (path.py[:preset]) or built-in name, e.g. configs/idsnn.py:digits or idsnn.py:digits",
        lock_config=True,
    )
    _FLAGS["workdir"] = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and summary.json.")
    _FLAGS["compilation_cache"] = flags.DEFINE_string(
        "compilation_cache",
        os.environ.get("SNNJAX_COMPILATION_CACHE", ""),
        "Directory of JAX's persistent compilation cache (default: $SNNJAX_COMPILATION_CACHE; empty: off). "
        "A rerun or resume of the same config then loads its compiled steps instead of compiling them.",
    )


def configs_dir() -> pathlib.Path:
    """The directory of the built-in config files.

    Installed from a wheel: ``snnjax/configs/`` inside the package. In a source checkout or an
    editable install: the repository's top-level ``configs/`` (``pyproject.toml`` maps the
    package ``snnjax.configs`` onto it, so both are the same files).
    """
    package = pathlib.Path(__file__).resolve().parent
    for candidate in (package / "configs", package.parent / "configs"):
        if (candidate / "idsnn.py").is_file():
            return candidate
    import importlib.util

    spec = importlib.util.find_spec("snnjax.configs")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (pathlib.Path(location) / "idsnn.py").is_file():
            return pathlib.Path(location)
    raise FileNotFoundError(
        "snnjax's built-in configs are missing (no snnjax/configs/ and no configs/ next to the "
        "package). Fix: reinstall snnjax, or pass --config with a path to a config file."
    )


def builtin_configs() -> list[str]:
    return sorted(p.name for p in configs_dir().glob("*.py") if not p.name.startswith("_"))


def resolve_config(spec: str) -> str:
    """``path.py[:preset]`` unchanged when the file exists; a built-in name (``idsnn.py:digits``,
    ``idsnn:digits``, ``configs/idsnn.py:digits`` outside a checkout) mapped to the packaged file."""
    path, sep, preset = spec.partition(":")
    if os.path.isfile(path):
        return spec
    name = os.path.basename(path)
    name = name if name.endswith(".py") else name + ".py"
    try:
        candidate = configs_dir() / name
    except FileNotFoundError:
        return spec
    if not candidate.is_file():
        raise app.UsageError(
            f"--config={spec}: no file {path!r} and no built-in config {name!r}; built-in: "
            f"{', '.join(builtin_configs())}"
        )
    return f"{candidate}{sep}{preset}"


def _resolve_config_argv(argv: list[str]) -> list[str]:
    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--config="):
            out[i] = "--config=" + resolve_config(arg[len("--config=") :])
        elif arg == "--config" and i + 1 < len(out):
            out[i + 1] = resolve_config(out[i + 1])
    return out


def enable_compilation_cache(directory: str) -> None:
    """Persist every compiled XLA program under ``directory`` (shared safely by concurrent runs)."""
    import jax

    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(directory))
    # Small programs (eval, init) compile in well under JAX's default 1 s floor but are still worth keeping.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; overrides are written --config.key=value")
    from snnjax.train import distributed

    # First, before any computation: join the other processes of a multi-process run.
    try:
        distributed.initialize_from_env()
    except distributed.DistributedConfigError as err:
        raise app.UsageError(str(err)) from None
    from snnjax import config as config_lib
    from snnjax import methods
    from snnjax.train import mesh as mesh_lib
    from snnjax.train import preflight

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax/absl INFO lines drown the progress bar
    config = _FLAGS["config"].value
    workdir = os.path.abspath(_FLAGS["workdir"].value)
    config_lib.validate(config)
    if _FLAGS["compilation_cache"].value:
        enable_compilation_cache(_FLAGS["compilation_cache"].value)
    # Preflight on every process (each host checks its own view of the workdir and devices).
    distributed.check_same_everywhere("config and --workdir", config.to_json() + workdir)
    mesh = mesh_lib.make_mesh()  # the run's one mesh, handed down to every stage
    mesh_lib.check_batch_size(int(config.data.batch_size), mesh)
    preflight.check_workdir(workdir, min_free_mb=float(config.train.min_free_disk_mb))
    if distributed.process_count() > 1:
        distributed.say(f"multi-process run: {distributed.describe()}")
    try:
        methods.get(config.pipeline)(config, workdir, mesh=mesh)
    except Exception as err:
        distributed.exit_if_peer_lost(err)
        raise


def run(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snnjax.launch`` and the ``snnjax-launch`` script."""
    define_flags()
    flags.mark_flags_as_required(["config", "workdir"])
    try:
        argv = _resolve_config_argv(sys.argv if argv is None else argv)
    except app.UsageError as err:
        sys.exit(f"FATAL {err}")
    app.run(main, argv=argv)


if __name__ == "__main__":
    run()
