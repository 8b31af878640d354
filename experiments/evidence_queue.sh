#!/usr/bin/env bash
# The full-size evidence runs (issues 37-39: hybrid + STDB, SNN2ANN, pretraining on all of Fashion-MNIST)
# as ONE background queue: one run at a time, niced, logged, resumable, from its own git worktree at a
# fixed commit (recorded in every run's queue_run.json and in its summary.json's environment).
#
#   bash experiments/evidence_queue.sh [COMMIT] [ROOT]        # from the repository root
#   nohup bash experiments/evidence_queue.sh 50df1b0 > /dev/null 2>&1 &
#
# COMMIT (default HEAD) is checked out, detached, into ROOT/worktree-<sha>, with its own virtual
# environment (ROOT/venv-<sha>, the pinned versions of constraints.txt), so that editing this checkout
# never changes a run in flight. ROOT (default /work/evidence) is outside the repository: runs,
# checkpoints and logs are never committed; the report scripts read them and write docs/.
# Re-running the same command resumes: a finished run is skipped (launch.py's "finished earlier"),
# an interrupted one continues from its last checkpoint. A second queue on the same ROOT refuses.
# Needs `apt-get install dataset-fashion-mnist`.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=$(git -C "$REPO" rev-parse "${1:-HEAD}")
ROOT=${2:-/work/evidence}
SHORT=${COMMIT:0:7}
WT="$ROOT/worktree-$SHORT"
VENV="$ROOT/venv-$SHORT"
mkdir -p "$ROOT/logs"
exec 9>"$ROOT/queue.lock"
if ! flock -n 9; then
  echo "evidence queue: another queue is running on $ROOT (lock $ROOT/queue.lock); wait for it or stop it" >&2
  exit 2
fi
say() { echo "$(date -u +%FT%TZ) $*" | tee -a "$ROOT/queue.log"; }

if [[ ! -d $WT ]]; then
  git -C "$REPO" worktree add --detach "$WT" "$COMMIT" >/dev/null
fi
if [[ ! -x $VENV/bin/python ]]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >>"$ROOT/logs/venv.log" 2>&1
  "$VENV/bin/python" -m pip install -q -c "$WT/constraints.txt" -e "$WT" >>"$ROOT/logs/venv.log" 2>&1
fi
PY="$VENV/bin/python"
QUIET=(--config.train.progress_bar=False --config.train.tensorboard=False)

# run NAME LAUNCH-ARGS...: one launch.py run into ROOT/NAME, logged to ROOT/logs/NAME.log.
run() {
  local name=$1
  shift
  local workdir="$ROOT/$name"
  if [[ -f $workdir/queue_run.json ]]; then
    return 0
  fi
  mkdir -p "$(dirname "$ROOT/logs/$name.log")"
  say "start $name (load $(cut -d' ' -f1-3 /proc/loadavg))"
  local t0 rc=0
  t0=$(date +%s)
  (cd "$WT" && nice -n 10 "$PY" launch.py "$@" "${QUIET[@]}" --workdir "$workdir") >>"$ROOT/logs/$name.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    say "FAILED $name (exit $rc; log $ROOT/logs/$name.log); the queue goes on"
    return 0
  fi
  "$PY" - "$workdir/queue_run.json" "$COMMIT" "$t0" "$name" "$@" <<'EOF'
import json, os, sys, time
path, commit, t0, name, *args = sys.argv[1:]
record = {
    "name": name,
    "commit": commit,
    "command": "python launch.py " + " ".join(args),
    "queue_seconds": time.time() - float(t0),
    "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "load_average_at_end": os.getloadavg(),
}
with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=1)
os.replace(path + ".tmp", path)
EOF
  say "done $name"
}

# Issue 37: hybrid conversion + STDB, VGG5 then ResNet20, seeds 0, 1, 2.
for S in 0 1 2; do
  run "hybrid/vgg_s$S" --config configs/hybrid_stdb.py:fashion_mnist_60k --config.seed=$S \
    --config.ann.train.progress_bar=False --config.ann.train.tensorboard=False
done
for S in 0 1 2; do
  run "hybrid/resnet20_s$S" --config configs/hybrid_stdb.py:fashion_mnist_60k,resnet20 --config.seed=$S \
    --config.ann.train.progress_bar=False --config.ann.train.tensorboard=False
done
say "queue finished"
