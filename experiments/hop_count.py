"""How far a newcomer follows ``config`` from a pipeline's ``run`` to the jitted train step.

    python experiments/hop_count.py            # in the checkout to measure (prints JSON)
    python experiments/hop_count.py --trace    # also every hop, one line each
    python experiments/hop_count.py --any-call # every call between snnjax files, config or not

Runs ``methods/idsnn/pipeline.py: run`` on ``configs/idsnn.py:digits`` (the teacher is its first stage)
under ``sys.setprofile`` and stops at the first ``jax.jit`` of a train step (a callable whose name
holds ``step``, jitted from ``snnjax/train/``). Counted, over the Python calls and returns between
files of ``snnjax/``:

- ``hops``: calls into a function of another ``snnjax`` file that receives a ``ConfigDict`` (the config
  or one of its sections) as an argument: what a reader following ``config`` has to open next;
- ``files``: the distinct files those hops enter (the pipeline's own file included);
- ``returns_to_a_file_left``: moves (a hop, or the return of one) into a file the reader had already
  been in and left: each is a file opened a second time;
- ``visits``: per file, how many times the reader enters it (its first time included).

The same script at two commits measures a refactor of the path (docs/architecture.md: Counted).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "snnjax") + os.sep


class _Stop(Exception):
    """Raised from the profiler at the first jit of a train step: nothing is compiled or trained."""


def measure(trace: bool = False, *, any_call: bool = False) -> dict:
    """The counts of the module doc; ``any_call``: count every call between ``snnjax`` files, not only
    those that receive a ``ConfigDict`` (everything a reader of the path steps through)."""
    sys.path.insert(0, REPO)
    import jax
    import ml_collections

    from snnjax import launch
    from snnjax.methods.idsnn import pipeline

    config = _load_config("configs/idsnn.py:digits")
    launch_mesh = _make_mesh()
    hops: list[tuple[str, str, str]] = []
    open_hops: dict[int, str] = {}  # id(frame) of a hop's callee -> the caller's file
    visits: dict[str, int] = {}
    revisits = 0

    def enter(path: str) -> None:
        nonlocal revisits
        revisits += path in visits
        visits[path] = visits.get(path, 0) + 1

    real_jit = jax.jit

    def jit(fun, *args, **kwargs):
        caller = sys._getframe(1).f_code.co_filename
        if caller.startswith(os.path.join(PACKAGE, "train")) and "step" in getattr(fun, "__name__", ""):
            raise _Stop
        return real_jit(fun, *args, **kwargs)

    def profile(frame, event, arg):
        if event not in ("call", "return"):
            return
        callee = frame.f_code.co_filename
        if not callee.startswith(PACKAGE) or frame.f_back is None:
            return
        caller = frame.f_back.f_code.co_filename
        if event == "call":
            if caller == callee or not caller.startswith(PACKAGE):
                return
            values = [frame.f_locals.get(name) for name in frame.f_code.co_varnames[: frame.f_code.co_argcount]]
            if any_call or any(isinstance(v, ml_collections.ConfigDict) for v in values):
                if not visits:
                    enter(_rel(caller))
                hops.append((_rel(caller), _rel(callee), frame.f_code.co_name))
                open_hops[id(frame)] = caller
                enter(_rel(callee))
        elif id(frame) in open_hops:
            enter(_rel(open_hops.pop(id(frame))))

    jax.jit = jit
    workdir = tempfile.mkdtemp(prefix="hop_count_")
    sys.setprofile(profile)
    try:
        pipeline.run(config, workdir, mesh=launch_mesh)
    except _Stop:
        pass
    finally:
        sys.setprofile(None)
        jax.jit = real_jit
    del launch
    result = {
        "hops": len(hops),
        "files": len(visits),
        "returns_to_a_file_left": revisits,
        "visits": dict(sorted(visits.items(), key=lambda kv: -kv[1])),
    }
    if trace:
        result["trace"] = [f"{a} -> {b}: {name}" for a, b, name in hops]
    return result


def _rel(path: str) -> str:
    return os.path.relpath(path, REPO)


def _load_config(spec: str):
    from ml_collections import config_flags

    from snnjax import config as config_lib

    path, _, preset = spec.partition(":")
    module = config_flags.config_flags._LoadConfigModule("config", os.path.join(REPO, path))  # noqa: SLF001
    config = module.get_config(preset)
    config_lib.apply_epochs_all(config, frozenset())
    config_lib.validate(config)
    return config


def _make_mesh():
    from snnjax.train import mesh as mesh_lib

    return mesh_lib.make_mesh()


if __name__ == "__main__":
    print(json.dumps(measure(trace="--trace" in sys.argv, any_call="--any-call" in sys.argv), indent=1))
