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

One run per workdir: the launch holds ``WORKDIR/.snnjax.lock`` (:mod:`snnjax.train.workdir_lock`)
while it runs, so a second launch on the same workdir stops in one line (exit code 1) and writes
nothing there: at once, before JAX is imported, when the holder is a live process on this host
(:func:`exit_if_workdir_busy`); after the imports when it runs on another host. A run that finished earlier
is not run again: the same command prints its summary (:mod:`snnjax.train.finished`). Errors a
user can fix end in one or two lines and exit code 2 (usage) or 1 (the run failed); the full
traceback is appended to ``WORKDIR/snnjax.log`` and printed with ``--verbose``
(:mod:`snnjax.user_errors`).

``--config.epochs_all=N`` sets every stage's ``train.epochs`` except those typed on the command line:
``--config.epochs_all=2 --config.train.epochs=3`` trains the final stage 3 epochs and the others 2
(:func:`typed_config_keys`, :func:`snnjax.config.apply_epochs_all`).
"""

from __future__ import annotations

import dataclasses
import logging as std_logging
import os
import pathlib
import shutil
import sys
import traceback
from collections.abc import Callable
from typing import Any

from snnjax import runtime

# Before anything starts JAX's CPU backend: multi-threaded Eigen convolutions (snnjax/runtime.py).
runtime.use_eigen_convolutions()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from snnjax import user_errors, workdir_layout  # noqa: E402

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
        default_compilation_cache(),
        "Directory of JAX's persistent compilation cache (default: $SNNJAX_COMPILATION_CACHE, else "
        "<user cache dir>/snnjax/jax_compilation_cache; empty or 'off': no cache). A rerun, resume or another "
        "workdir of the same config then loads its compiled steps instead of compiling them.",
    )
    _FLAGS["verbose"] = flags.DEFINE_bool(
        "verbose", False, f"Print the full traceback of an error (also: ${user_errors.VERBOSE_ENV}=1)."
    )
    _FLAGS["check"] = flags.DEFINE_bool(
        "check",
        False,
        "Only check the command: load the config with its presets and overrides, validate it, print one "
        "line and exit (0: it would start; 2: the error), without touching --workdir or building a mesh.",
    )


def user_cache_dir() -> str:
    """``$XDG_CACHE_HOME/snnjax`` or ``~/.cache/snnjax``."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "snnjax")


def default_compilation_cache() -> str:
    """``$SNNJAX_COMPILATION_CACHE`` when set (``''``, ``off``, ``0``: no cache), else under :func:`user_cache_dir`."""
    value = os.environ.get("SNNJAX_COMPILATION_CACHE")
    if value is None:
        return os.path.join(user_cache_dir(), "jax_compilation_cache")
    return "" if value.strip().lower() in ("", "off", "0", "false", "no") else value


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


def typed_config_keys(config_flag: flags.Flag | None = None) -> frozenset[str]:
    """The config keys typed on the command line, from the parsed ``--config`` flag (default:
    ``FLAGS["config"]``): ``{"train.epochs"}`` for ``--config.train.epochs=3``. What
    :func:`snnjax.config.apply_epochs_all` leaves as typed."""
    flag = flags.FLAGS["config"] if config_flag is None else config_flag
    return frozenset(config_flags.get_override_values(flag))


def exit_if_workdir_busy(argv: list[str]) -> None:
    """Stop in one line, exit code 1, when a live process on this host holds ``argv``'s ``--workdir``
    (:func:`snnjax.train.workdir_lock.exit_if_busy`), before the run imports JAX and the rest.

    ``workdir_lock`` is loaded from its file: importing it as ``snnjax.train.workdir_lock`` would run
    ``snnjax/train/__init__.py`` first, which imports orbax and the training loop (seconds).
    """
    path = pathlib.Path(__file__).resolve().parent / "train" / "workdir_lock.py"
    load_standalone(str(path)).exit_if_busy(argv)


def load_standalone(path: str) -> Any:
    """The module of the Python file ``path``, loaded without its package (whose ``__init__`` may import JAX)."""
    import importlib.util

    name = "_snnjax_standalone_" + pathlib.Path(path).stem
    if name in sys.modules:  # launch.py loaded it already, under this name
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def enable_compilation_cache(directory: str) -> None:
    """Persist every compiled XLA program under ``directory`` (shared safely by concurrent runs)."""
    import jax

    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(directory))
    # Small programs (eval, init) compile in well under JAX's default 1 s floor but are still worth keeping.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@dataclasses.dataclass
class LaunchState:
    """The launcher's hold on the run under way, for its error handling.

    Attributes:
      lock: the workdir's lock (:func:`take_lock`), None until taken and on processes other than 0.
      started: True once the run passed its checks and holds its workdir: an error after that is the
        run's, not the command line's (:func:`snnjax.user_errors.classify`).
    """

    lock: Any = None
    started: bool = False

    def release(self) -> None:
        """Release the lock once."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def main(argv: list[str]) -> None:
    """Run the pipeline of ``--config`` in ``--workdir``; user errors end in one or two lines (module doc)."""
    if len(argv) > 1:
        _exit_with(app.UsageError(f"unexpected arguments {argv[1:]}; overrides are written --config.key=value"), argv)
    workdir = os.path.abspath(_FLAGS["workdir"].value)
    if _FLAGS["check"].value:
        check_command(workdir, argv)
        return
    existed = os.path.exists(workdir)
    state = LaunchState()
    try:
        mesh = start_process(
            compilation_cache=_FLAGS["compilation_cache"].value,
            verbose=_FLAGS["verbose"].value or user_errors.verbose_requested(sys.argv),
        )
        config = resolve_config_values(_FLAGS["config"].value, typed_config_keys())
        run_in_workdir(config, workdir, mesh=mesh, state=state)
    except Exception as err:  # every error reaches the user through user_errors.report
        exit_on_error(err, workdir, existed=existed, state=state)
    finally:
        state.release()


def check_command(workdir: str, argv: list[str]) -> None:
    """``--check``: the config as it would run (presets, overrides, ``epochs_all``) is valid; one line
    on stdout, or the usual one-line error and exit code 2. ``workdir`` is named, never touched."""
    try:
        config = resolve_config_values(_FLAGS["config"].value, typed_config_keys())
    except Exception as err:
        _exit_with(err, argv)
    print(f"config OK: pipeline {config.pipeline}, {config.data.name}, seed {config.seed}; workdir {workdir}")


def start_process(*, compilation_cache: str, verbose: bool):
    """Once per process, before any run: join the other processes of a multi-process run (first, before
    any computation), quieten absl/orbax, enable the compilation cache and build the run's one mesh.

    Returns the mesh that every run of this process is handed (:func:`run_in_workdir`).
    """
    from snnjax.train import distributed
    from snnjax.train import mesh as mesh_lib

    try:
        distributed.initialize_from_env()
    except distributed.DistributedConfigError as err:
        raise app.UsageError(str(err)) from None
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax/absl INFO lines drown the progress bar
    if not verbose:
        quiet_failed_save_reports()
    if compilation_cache:
        try:
            enable_compilation_cache(compilation_cache)
        except OSError as err:  # a speed-up only: never a reason to stop
            distributed.say(f"warning: no compilation cache ({err}); pass --compilation_cache=DIR to choose one")
    if distributed.process_count() > 1:
        distributed.say(f"multi-process run: {distributed.describe()}")
    return mesh_lib.make_mesh()


def resolve_config_values(config, typed_keys: frozenset[str] = frozenset()):
    """``config`` as it will run: ``--config.epochs_all`` applied (keys in ``typed_keys`` win) and
    validated (one-line usage errors). A driver of several runs resolves its base config once."""
    from snnjax import config as config_lib

    config_lib.apply_epochs_all(config, typed_keys)
    config_lib.validate(config)
    return config


def run_in_workdir(
    config,
    workdir: str,
    *,
    mesh,
    state: LaunchState,
    run_fn: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One run of a resolved ``config`` in ``workdir``: the launcher's sequence, the same for
    ``launch.py`` and for every driver of several runs (the IDSNN ablation).

    Checks (same config on every process, batch size over the mesh, free disk), takes the workdir's
    lock (``state.lock``), returns the summary of a run that finished earlier without running it again,
    otherwise runs ``run_fn(config, workdir, mesh=mesh)`` (default: the pipeline ``config.pipeline``),
    marks it finished and releases the lock. Returns the run's summary.
    """
    from snnjax import methods
    from snnjax.train import checkpoint, distributed, finished, preflight
    from snnjax.train import mesh as mesh_lib

    # Preflight on every process (each host checks its own view of the workdir and devices).
    distributed.check_same_everywhere("config and --workdir", config.to_json() + workdir)
    mesh_lib.check_batch_size(int(config.data.batch_size), mesh)
    preflight.check_workdir(workdir, min_free_mb=float(config.train.min_free_disk_mb))
    state.lock = take_lock(workdir)
    state.started = True
    try:
        done = distributed.broadcast_from_primary(int(finished.finished_summary(workdir, config) is not None))
        if done:
            summary = finished.finished_summary(workdir, config) or {}
            distributed.say(
                f"finished earlier: best test accuracy {float(summary.get('best_test_accuracy', float('nan'))):.4f}; "
                f"summary in {workdir_layout.summary(workdir)} (nothing to do; another --workdir or more epochs "
                "trains again)"
            )
            return summary
        if distributed.is_primary():
            checkpoint.remove_stale_tmp(workdir)
        summary = (run_fn or methods.get(config.pipeline))(config, workdir, mesh=mesh)
        if distributed.is_primary():
            finished.mark_finished(workdir, config)
        return summary
    finally:
        state.release()


def exit_on_error(err: BaseException, workdir: str, *, existed: bool, state: LaunchState, argv=None) -> None:
    """Report ``err`` of the run in ``workdir`` in one or two lines and exit (never returns).

    The traceback goes to ``workdir``'s log; to the user cache's when the run never started in a
    workdir it made (which is then removed: a failed launch leaves no empty workdir behind); nowhere
    when another run holds the workdir (its log keeps its own story).
    """
    from snnjax.train import distributed

    distributed.exit_if_peer_lost(err)
    state.release()
    log_path = workdir_layout.log(workdir)
    if _refused_busy(err):
        log_path = None
    elif not existed and _holds_nothing(workdir) and _never_ran(err, state.started):
        shutil.rmtree(workdir, ignore_errors=True)
        log_path = workdir_layout.log(os.path.join(user_cache_dir(), "logs"))
    elif not os.path.isdir(workdir):
        log_path = None
    _exit_with(err, sys.argv if argv is None else argv, started=state.started, log_path=log_path)


def quiet_failed_save_reports() -> None:
    """Keep the reports that a failed checkpoint save prints on its way from stderr: the error itself
    reaches the caller, which reports it in two lines (and logs its traceback)."""
    # orbax logs the traceback of a failed background save from each of its threads (hundreds of lines).
    logging.get_absl_handler().addFilter(_without_orbax_records)
    # The same errors come again from asyncio ("Task exception was never retrieved") when orbax's
    # unfinished write tasks are collected, possibly at exit and past the absl handler.
    std_logging.getLogger("asyncio").addFilter(_without_orbax_records)
    # And TensorStore's writes that finish after orbax closed its save loop report, per write, that
    # they cannot call back into it: through sys.unraisablehook, straight to stderr, mid-line.
    sys.unraisablehook = _without_closed_loop_callbacks(sys.unraisablehook)


def _without_orbax_records(record) -> bool:
    """A ``logging`` filter: False for the records of orbax's modules and for asyncio's reports of
    orbax tasks that failed (their tracebacks run through orbax's files)."""
    if "/orbax/" in (record.pathname or ""):
        return False
    if record.name == "asyncio":
        text = record.getMessage() + "".join(traceback.format_exception(*record.exc_info) if record.exc_info else [])
        return "orbax" not in text
    return True


def _without_closed_loop_callbacks(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """``hook``, less the ``RuntimeError('Event loop is closed')`` that a callback scheduled into an
    already closed asyncio loop raises (what the failed save's stray completions leave behind; the
    save's own error reaches the launcher, which reports it)."""

    def filtered(unraisable) -> None:
        err = unraisable.exc_value
        frames = traceback.extract_tb(unraisable.exc_traceback) if unraisable.exc_traceback else []
        closed_loop = (
            isinstance(err, RuntimeError)
            and str(err) == "Event loop is closed"
            and any(
                f.name == "_check_closed" and f.filename.endswith(os.path.join("asyncio", "base_events.py"))
                for f in frames
            )
        )
        if not closed_loop:
            hook(unraisable)

    return filtered


def take_lock(workdir: str):
    """The workdir's lock, taken by process 0 (the others wait for its outcome); raises
    :class:`~snnjax.train.workdir_lock.WorkdirLockedError` on every process when a live run holds it."""
    from snnjax.train import distributed, workdir_lock

    lock, error = None, None
    if distributed.is_primary():
        try:
            lock = workdir_lock.acquire(workdir)
        except workdir_lock.WorkdirLockedError as err:
            error = err
    ok = distributed.broadcast_from_primary(int(error is None))
    if error is not None:
        raise error
    if not ok:
        raise workdir_lock.WorkdirLockedError(
            f"--workdir={workdir} is in use by another run (see process 0's message). Fix: use another --workdir."
        )
    return lock


def _refused_busy(err: BaseException) -> bool:
    """True for the refusal of a workdir that another run holds (:func:`take_lock`)."""
    from snnjax.train import workdir_lock

    return isinstance(err, workdir_lock.WorkdirLockedError)


def _never_ran(err: BaseException, started: bool) -> bool:
    """True for errors that stop a run before it trains: usage errors and unreadable data."""
    from snnjax.data import errors as data_errors

    verdict = user_errors.classify(err, started=started)
    return isinstance(err, data_errors.DatasetError) or (verdict is not None and verdict[0] == user_errors.EXIT_USAGE)


def _holds_nothing(workdir: str) -> bool:
    """True when ``workdir`` holds no file but the launcher's own (lock, log): the run wrote nothing."""
    own = {workdir_layout.LOCK_FILE, workdir_layout.LOG_FILE}
    for _, _, files in os.walk(workdir):
        if any(name not in own for name in files):
            return False
    return os.path.isdir(workdir)


def _exit_with(err: BaseException, argv: list[str], *, started: bool = False, log_path: str | None = None):
    code = user_errors.report(err, started=started, log_path=log_path, argv=list(argv))
    sys.exit(code)


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every error (a misspelt key, a bad value, an unknown preset) as one
    line and exit code 2 instead of a traceback."""
    try:
        return flags.FLAGS(argv)
    except Exception as err:
        if isinstance(err, (AttributeError, KeyError)):
            key, _, hint = user_errors.one_line(err).partition(" ")
            err = app.UsageError(
                f"no config key {key} in {_override_args(argv, key.strip(chr(39)))}. {hint} Fix: correct the "
                "override (the config file lists every key)."
            )
        elif "Traceback (most recent call last)" in str(err) or not isinstance(err, flags.Error):
            # A config file that failed to load (e.g. an unknown preset): its last line, after the argument.
            message = user_errors.one_line(err)
            message = message.split(": ", 1)[1] if message.split(": ", 1)[0].endswith("Error") else message
            config_arg = next((a for a in argv[1:] if a.startswith("--config=")), "--config")
            err = app.UsageError(f"{config_arg}: {message}")
        _exit_with(err, argv)


def _override_args(argv: list[str], key: str) -> str:
    """The ``--config.`` overrides of ``argv`` that name ``key`` (all of them when none does)."""
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    named = [a for a in overrides if f".{key}=" in a or a.endswith(f".{key}")]
    return " ".join(named or overrides) or "the command line"


def run(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snnjax.launch`` and the ``snnjax-launch`` script."""
    argv = list(sys.argv if argv is None else argv)
    exit_if_workdir_busy(argv)  # first: a busy workdir stops at once, in one line
    define_flags()
    flags.mark_flags_as_required(["config", "workdir"])
    try:
        argv = _resolve_config_argv(argv)
    except app.UsageError as err:
        _exit_with(err, argv)
    app.run(main, argv=argv, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
