"""How an error of ``snnjax.launch`` reaches the user: one or two lines and an exit code.

A user error (a config key, type or preset; a dataset that is missing or corrupt; a checkpoint that
is corrupt or of another config; an unwritable or full disk; a transplant between networks that do
not fit; a non-finite loss; a workdir held by another run) prints

    snnjax: error: <what is wrong, the value, the fix>
    (full traceback: <log file>; or run with --verbose)

on stderr and exits with :data:`EXIT_USAGE` (the command cannot run as given: fix the config or the
paths) or :data:`EXIT_FAILURE` (the run started and failed). Anything else is a defect of snnjax: its
full traceback is printed as well. The traceback of every error is appended to the log file, but for
a workdir held by another run: that refusal is the first line alone (exit code 1), and the holder's
``WORKDIR/snnjax.log`` is left to the holder (``snnjax.launch``; :mod:`snnjax.train.workdir_lock`).
"""

from __future__ import annotations

import ast
import datetime
import errno
import os
import re
import sys
import traceback

EXIT_FAILURE = 1
EXIT_USAGE = 2
VERBOSE_ENV = "SNNJAX_VERBOSE"
MAX_MESSAGE_CHARS = 1200  # a message longer than this is cut (a cause's dump, e.g. a TensorStore spec)


def _usage_types() -> tuple[type, ...]:
    from absl import app, flags

    from snnjax.data import errors as data_errors
    from snnjax.train import distributed, preflight

    return (
        app.UsageError,
        flags.Error,
        preflight.WorkdirError,
        distributed.DistributedConfigError,
        data_errors.UnknownDatasetError,
        data_errors.InvalidDatasetOptionError,
        data_errors.DatasetNotFoundError,
    )


def _failure_types() -> tuple[type, ...]:
    from snnjax.data import errors as data_errors
    from snnjax.train import checkpoint, loop, workdir_lock

    return (
        data_errors.DatasetError,
        checkpoint.CheckpointError,
        loop.NonFiniteLossError,
        workdir_lock.WorkdirLockedError,
    )


def one_line(text: str) -> str:
    """``text`` as one line: the last line of an embedded traceback, a repr'd string unescaped
    (ml_collections wraps its key errors so), newlines joined, cut at :data:`MAX_MESSAGE_CHARS`."""
    text = str(text).strip()
    if "Traceback (most recent call last)" in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        text = lines[-1] if lines else text
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            text = str(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            pass
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def classify(err: BaseException, *, started: bool) -> tuple[int, str] | None:
    """``(exit code, one-line message)`` of a user error, or None for a defect of snnjax.

    ``started``: whether the run got past its preflight (a ``ValueError`` before is a config error,
    exit 2; during the run, e.g. a transplant between networks that do not fit, exit 1).
    """
    if isinstance(err, _usage_types()):
        return EXIT_USAGE, one_line(err)
    if isinstance(err, _failure_types()):
        return EXIT_FAILURE, one_line(err)
    full = _disk_full(err)
    if full is not None:
        return EXIT_FAILURE, (
            f"the disk is full ({full}). Fix: free space (or raise the file-size limit) and run the same command "
            "again: it resumes from the last complete checkpoint."
        )
    if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return EXIT_FAILURE, (
            f"cannot write {err.filename or 'a file of the run'} ({err.strerror}). Fix: make the workdir writable "
            "(or pass another --workdir) and run the same command again."
        )
    if isinstance(err, (ValueError, FileNotFoundError)):
        return (EXIT_FAILURE if started else EXIT_USAGE), one_line(err)
    return None


# How a full disk or a file-size limit reads when it comes through TensorStore/orbax, not as an OSError.
_DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")


def _disk_full(err: BaseException) -> str | None:
    """The cause, when ``err`` (or an exception it was raised from) is a full disk or a file-size limit."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return f"{err.strerror}: {err.filename}" if err.filename else str(err.strerror)
        text = str(err)
        for phrase in _DISK_FULL_TEXT:
            if phrase in text:
                path = re.search(r'"(/[^"]+)"', text)
                return f"{phrase} writing {path.group(1)}" if path else phrase
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def verbose_requested(argv: list[str]) -> bool:
    """``--verbose`` on the command line or ``$SNNJAX_VERBOSE`` set to anything but ``''``/``0``."""
    return "--verbose" in argv or "--verbose=true" in argv or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def append_log(path: str, err: BaseException, argv: list[str]) -> str | None:
    """Append the time, the command and ``err``'s traceback to ``path``; the path, or None if unwritable."""
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "a") as f:
            stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            f.write(f"=== {stamp} pid {os.getpid()}: {' '.join(argv)}\n")
            f.write("".join(traceback.format_exception(err)))
        return path
    except OSError:
        return None


def report(err: BaseException, *, started: bool, log_path: str | None, argv: list[str]) -> int:
    """Print ``err`` for the user (module doc) and return the exit code."""
    verdict = classify(err, started=started)
    logged = append_log(log_path, err, argv) if log_path else None
    if verdict is None or verbose_requested(argv):
        traceback.print_exception(err, file=sys.stderr)
    code, message = (
        verdict if verdict is not None else (EXIT_FAILURE, f"internal error: {type(err).__name__}: {one_line(err)}")
    )
    print(f"snnjax: error: {message}", file=sys.stderr)
    if logged and not verbose_requested(argv):
        print(f"(full traceback: {logged}; or run with --verbose)", file=sys.stderr)
    sys.stderr.flush()
    return code
