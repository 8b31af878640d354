"""Fault injection with real processes on a tiny digits run: does a run survive, bitwise?

    python benchmarks/faults.py --save faults         # docs/guarantees.md's table (about 10-20 min on 2 loaded cores)
    python benchmarks/faults.py --kills 2 --chains 1 --corrupt_kinds 2 --out /tmp/f.json   # the CI form

Every trial launches ``launch.py`` as a user would (a width-4 ResNet18 on ``digits``, 2 epochs of 22
steps, a checkpoint every 3 steps, a train record every step) and compares the end of the faulted run
with one uninterrupted run:

* **survived bitwise**: the final checkpoint's parameters, BN statistics and optimizer state are
  bit-for-bit those of the uninterrupted run (and ``summary.json`` reports the same accuracy);
* **steps logged twice**: train records of a step found more than once in ``metrics.jsonl``;
* **lost checkpoints**: complete checkpoints on disk at the fault that the restart did not resume from
  (or that it had to move aside), i.e. training redone because of the fault.

Faults: ``kill -9`` at random moments (a random train step, or the instant a checkpoint's temporary
folder appears, i.e. during a write), each followed by the same command again (several kills per run:
``--kills`` in ``--chains`` runs); every kind of checkpoint file overwritten with random bytes in the
latest checkpoint; a second launch on the same workdir while the first runs; a file-size limit
(``RLIMIT_FSIZE``, as a full disk) hit mid-save; a read-only workdir (the launch runs as ``nobody``).
Results are printed as a Markdown table and written, after every trial, as a results record
(:mod:`benchmarks._results`: command, commit, machine, date, load; the trials in ``values``):
``--save NAME`` writes ``benchmarks/results/NAME.json`` (docs/guarantees.md's table: ``faults``), ``--out PATH``
the same record anywhere else.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import random
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the snnjax of this checkout, as the launches below run it (PYTHONPATH)
    sys.path.insert(0, ROOT)
from snnjax import workdir_layout  # noqa: E402

STEPS = 44  # 2 epochs of digits (1437 // 64 = 22 steps each)
ARGS = [
    "--config=configs/teacher.py:digits",
    "--config.model.name=resnet18",
    "--config.model.width=4",
    "--config.train.epochs=2",
    "--config.train.checkpoint_every_steps=3",
    "--config.train.keep_checkpoints=3",
    "--config.train.log_every_steps=1",
    "--config.train.progress_bar=False",
    "--config.train.tensorboard=False",
]


def command(workdir: str, *extra: str) -> list[str]:
    return [sys.executable, os.path.join(ROOT, "launch.py"), *ARGS, f"--workdir={workdir}", *extra]


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": ROOT, **extra}


def launch(workdir: str, *extra: str, timeout: float = 900, **popen) -> subprocess.CompletedProcess:
    popen.setdefault("env", environment())
    return subprocess.run(command(workdir, *extra), cwd=ROOT, capture_output=True, text=True, timeout=timeout, **popen)


def start(workdir: str, *extra: str, **popen) -> subprocess.Popen:
    popen.setdefault("env", environment())
    return subprocess.Popen(
        command(workdir, *extra), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def ckpt_dir(workdir: str) -> str:
    return workdir_layout.stage_checkpoints(workdir, "train")


def complete_steps(workdir: str) -> list[int]:
    d = ckpt_dir(workdir)
    return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def final_state(workdir: str) -> dict[str, bytes]:
    """``{leaf path: bytes}`` of the last checkpoint's whole train state."""
    import jax
    import orbax.checkpoint as ocp

    step = max(complete_steps(workdir))
    tree = ocp.StandardCheckpointer().restore(os.path.join(ckpt_dir(workdir), str(step), "state"))
    return {jax.tree_util.keystr(k): np.asarray(v).tobytes() for k, v in jax.tree_util.tree_leaves_with_path(tree)}


def train_steps(workdir: str) -> list[int]:
    path = workdir_layout.metrics(workdir)
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path):
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if r.get("kind") == "train":
            out.append(int(r["step"]))
    return out


def resumed_step(stderr: str) -> int | None:
    m = re.search(r"resumed from \S+ \(step (\d+)", stderr)
    return int(m.group(1)) if m else None


class Reference:
    """The uninterrupted run every trial is compared with."""

    def __init__(self, root: str):
        self.workdir = os.path.join(root, "reference")
        proc = launch(self.workdir)
        if proc.returncode != 0:
            raise RuntimeError(f"the reference run failed:\n{proc.stderr[-3000:]}")
        self.state = final_state(self.workdir)
        self.accuracy = json.load(open(workdir_layout.summary(self.workdir)))["best_test_accuracy"]

    def judge(self, workdir: str) -> dict[str, int]:
        """``bitwise`` (0/1) and ``twice`` (steps logged more than once) of a finished trial."""
        steps = train_steps(workdir)
        twice = len(steps) - len(set(steps))
        ok = sorted(set(steps)) == list(range(1, STEPS + 1))
        try:
            summary = json.load(open(workdir_layout.summary(workdir)))
            ok = ok and summary["best_test_accuracy"] == self.accuracy and final_state(workdir) == self.state
        except (OSError, ValueError, KeyError):
            ok = False
        return {"bitwise": int(ok), "twice": twice}


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 600, poll: float = 0.005) -> bool:
    """Poll ``predicate()`` until true (True) or until ``proc`` ends or time runs out (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False


def kill_chain(ref: Reference, root: str, kills: int, rng: random.Random) -> dict[str, int]:
    """One run killed ``kills`` times (alternately at a random step and the instant a checkpoint's
    temporary folder appears, i.e. during a write), each time started again with the same command,
    then run to its end and judged against the reference."""
    workdir = os.path.join(root, f"kills_{rng.randrange(10**9)}")
    done_kills = lost = during_write = 0
    for k in range(kills + 1):
        before = complete_steps(workdir)  # what the restart should resume from
        proc = start(workdir)
        if k < kills:
            if k % 2 == 1:
                pattern = os.path.join(ckpt_dir(workdir), "*.orbax-checkpoint-tmp*")
                seen = set(glob.glob(pattern))
                during_write += int(wait_for(lambda: bool(set(glob.glob(pattern)) - seen), proc, poll=0.002))
            else:
                # 1-4 steps past the checkpoint it resumes from: early, before, or just after the next save.
                target = min(STEPS - 1, max(complete_steps(workdir), default=0) + rng.randint(1, 4))
                wait_for(lambda: max(train_steps(workdir), default=0) >= target, proc)
            if proc.poll() is None:
                proc.kill()  # SIGKILL: no cleanup of any kind
                done_kills += 1
        _, err = proc.communicate(timeout=900)
        got = resumed_step(err)
        if before and got is not None and got != max(before):
            lost += 1  # a complete checkpoint was not used
        if k == kills or proc.returncode == 0:
            break
    lost += len(glob.glob(os.path.join(ckpt_dir(workdir), "*.corrupt*")))  # complete, yet unusable
    finished = proc.returncode == 0
    verdict = ref.judge(workdir) if finished else {"bitwise": 0, "twice": len(train_steps(workdir))}
    return {"kills": done_kills, "during_write": during_write, "lost": lost, **verdict}


def stopped_run(root: str, name: str, at: int = 16) -> str:
    """A run stopped after ``at`` steps (exit 3), checkpoints at every 3rd step."""
    workdir = os.path.join(root, name)
    proc = launch(workdir, f"--config.train.stop_after_steps={at}")
    if proc.returncode != 3:
        raise RuntimeError(f"the stopped run failed:\n{proc.stderr[-3000:]}")
    return workdir


CORRUPT_KINDS = (
    "_CHECKPOINT_METADATA",
    "commit_success.txt",
    "config/metadata",
    "meta/metadata",
    "state/_METADATA",
    "state/_sharding",
    "state/array_metadatas/*",
    "state/manifest.ocdbt",
    "state/d/*",
    "state/ocdbt.process_0/manifest.ocdbt",
    "state/ocdbt.process_0/d/*",
)


def corrupt_trial(ref: Reference, base: str, root: str, kind: str, seed: int) -> dict[str, int]:
    """Random bytes over every file of ``kind`` in the latest checkpoint of a copy of ``base``; resume."""
    workdir = os.path.join(root, "corrupt_" + re.sub(r"\W+", "_", kind))
    shutil.copytree(base, workdir)
    latest = os.path.join(ckpt_dir(workdir), str(max(complete_steps(workdir))))
    files = [f for f in glob.glob(os.path.join(latest, "**", "*"), recursive=True) if os.path.isfile(f)]
    hits = [f for f in files if glob.fnmatch.fnmatch(os.path.relpath(f, latest), kind)]
    if kind == "commit_success.txt":
        hits = [f for f in files if os.path.basename(f) == kind]
    rng = np.random.default_rng(seed)
    for f in hits:
        with open(f, "wb") as fh:
            fh.write(rng.integers(0, 256, max(os.path.getsize(f), 16), dtype=np.uint8).tobytes())
    proc = launch(workdir)
    verdict = ref.judge(workdir) if proc.returncode == 0 else {"bitwise": 0, "twice": 0}
    moved = len(glob.glob(os.path.join(ckpt_dir(workdir), "*.corrupt*")))
    # A checkpoint moved aside was damaged on purpose; "lost" counts only undamaged ones not used.
    got = resumed_step(proc.stderr)
    lost = int(got is not None and got < max(complete_steps(base)) - 3 * max(moved, 1))
    return {"files": len(hits), "moved_aside": moved, "lost": lost, "rc": proc.returncode, **verdict}


def concurrent_trial(ref: Reference, root: str) -> dict[str, int]:
    workdir = os.path.join(root, "concurrent")
    first = start(workdir)
    wait_for(lambda: os.path.exists(workdir_layout.lock(workdir)), first)
    second = launch(workdir)
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    refused = second.returncode == 1 and len(lines) <= 2 and "in use by another run" in second.stderr
    first.communicate(timeout=900)
    verdict = ref.judge(workdir) if first.returncode == 0 else {"bitwise": 0, "twice": 0}
    return {"second_refused": int(refused), "lost": 0, **verdict}


def disk_full_trial(ref: Reference, root: str, limit_bytes: int = 200_000) -> dict[str, int]:
    """A file-size limit below a checkpoint's largest file: the first save fails like a full disk."""
    workdir = os.path.join(root, "disk_full")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    full = launch(workdir, preexec_fn=limit)
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    short = full.returncode == 1 and len(lines) <= 2 and "disk is full" in full.stderr
    again = launch(workdir)
    verdict = ref.judge(workdir) if again.returncode == 0 else {"bitwise": 0, "twice": 0}
    return {"failed_in_two_lines": int(short), "rc": full.returncode, "lost": 0, **verdict, "stderr_tail": lines[-2:]}


def read_only_trial(ref: Reference, base: str, root: str) -> dict[str, int]:
    """The workdir on a read-only mount (a bind mount in a private mount namespace: ``unshare -rm``,
    nothing changes outside the launch); then the same command on the writable workdir."""
    workdir = os.path.join(root, "read_only")
    shutil.copytree(base, workdir)
    files = sorted(f for f in glob.glob(os.path.join(workdir, "**", "*"), recursive=True) if os.path.isfile(f))
    before = {f: open(f, "rb").read() for f in files}
    inner = " ".join(shlex.quote(a) for a in command(workdir))
    mount = (
        f"mount --bind {shlex.quote(workdir)} {shlex.quote(workdir)} && mount -o remount,bind,ro {shlex.quote(workdir)}"
    )
    ro = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"{mount} && exec {inner}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=environment(),
    )
    lines = [line for line in ro.stderr.splitlines() if line.strip()]
    short = ro.returncode == 2 and len(lines) <= 2 and "not writable" in ro.stderr
    after_files = sorted(f for f in glob.glob(os.path.join(workdir, "**", "*"), recursive=True) if os.path.isfile(f))
    untouched = after_files == files and all(open(f, "rb").read() == before[f] for f in files)
    again = launch(workdir)
    verdict = ref.judge(workdir) if again.returncode == 0 else {"bitwise": 0, "twice": 0}
    return {
        "refused_in_two_lines": int(short),
        "untouched": int(untouched),
        "lost": 0,
        **verdict,
        "stderr_tail": lines[-2:],
    }


def table(results: dict) -> str:
    rows = ["| fault | trials | survived bitwise | steps logged twice | lost checkpoints |", "|---|---|---|---|---|"]
    kills = results["kill"]
    n_kills = sum(c["kills"] for c in kills)
    rows.append(
        f"| `kill -9` at a random step or mid-checkpoint-write ({sum(c['during_write'] for c in kills)} during a write), "
        f"then the same command | {n_kills} kills in {len(kills)} runs | {sum(c['bitwise'] for c in kills)}/{len(kills)} runs "
        f"| {sum(c['twice'] for c in kills)} | {sum(c['lost'] for c in kills)} |"
    )
    cor = results["corrupt"]
    rows.append(
        f"| random bytes over one kind of checkpoint file in the latest checkpoint ({len(cor)} kinds: "
        f"{', '.join('`' + k + '`' for k in cor)}) | {len(cor)} | {sum(v['bitwise'] for v in cor.values())}/{len(cor)} "
        f"| {sum(v['twice'] for v in cor.values())} | {sum(v['lost'] for v in cor.values())} |"
    )
    for key, label in (
        ("concurrent", "a second launch on the same workdir (refused in one line: {second_refused})"),
        (
            "disk_full",
            "file-size limit (full disk) hit at the first save, then relaunched (failed in two lines: {failed_in_two_lines})",
        ),
        (
            "read_only",
            "read-only workdir (refused in two lines: {refused_in_two_lines}, files untouched: {untouched}), then writable",
        ),
    ):
        v = results[key]
        rows.append(f"| {label.format(**v)} | 1 | {v['bitwise']}/1 | {v['twice']} | {v['lost']} |")
    return "\n".join(rows)


def _results_module():
    """``benchmarks/_results.py`` (imported only when a record is written: the CI test imports this file)."""
    for path in (ROOT, os.path.dirname(os.path.abspath(__file__))):  # snnjax (the record's commit), _results
        if path not in sys.path:
            sys.path.insert(0, path)
    import _results

    return _results


def save(args: argparse.Namespace, results: dict, t0: float, load_before: list[float] | None) -> None:
    """Write what is measured so far (a long benchmark stopped early still leaves its trials) as a results
    record: ``--save NAME`` into ``benchmarks/results/NAME.json``, ``--out PATH`` at PATH."""
    if not (args.save or args.out):
        return
    values = {**results, "seconds": round(time.time() - t0, 1)}
    if args.save:
        _results_module().write(args.save, values, load_before)
    if args.out:
        _results_module().write(args.save or "faults", values, load_before, path=pathlib.Path(args.out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="kill -9 faults in all")
    parser.add_argument("--chains", type=int, default=4, help="runs the kills are spread over")
    parser.add_argument("--corrupt_kinds", type=int, default=len(CORRUPT_KINDS), help="how many file kinds to corrupt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default="", help="write the record to benchmarks/results/SAVE.json")
    parser.add_argument("--out", default="", help="write the same record to this path")
    parser.add_argument("--skip", default="", help="comma-separated: concurrent,disk_full,read_only")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    load_before = [round(x, 2) for x in os.getloadavg()]
    root = tempfile.mkdtemp(prefix="snnjax_faults_")
    t0 = time.time()
    try:
        ref = Reference(root)
        results: dict = {"kill": [], "corrupt": {}}
        per_chain = [args.kills // args.chains + (i < args.kills % args.chains) for i in range(args.chains)]
        for n in per_chain:
            results["kill"].append(kill_chain(ref, root, n, rng))
            print("kill chain:", results["kill"][-1], file=sys.stderr, flush=True)
            save(args, results, t0, load_before)
        base = stopped_run(root, "stopped")
        for i, kind in enumerate(CORRUPT_KINDS[: args.corrupt_kinds]):
            results["corrupt"][kind] = corrupt_trial(ref, base, root, kind, seed=args.seed + i)
            print("corrupt", kind, results["corrupt"][kind], file=sys.stderr, flush=True)
            save(args, results, t0, load_before)
        skip = set(filter(None, args.skip.split(",")))
        for name, trial in (
            ("concurrent", lambda: concurrent_trial(ref, root)),
            ("disk_full", lambda: disk_full_trial(ref, root)),
            ("read_only", lambda: read_only_trial(ref, base, root)),
        ):
            results[name] = trial() if name not in skip else {}
            print(name, results[name], file=sys.stderr, flush=True)
            save(args, results, t0, load_before)
        if not skip:
            print(table(results))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
