#!/usr/bin/env bash
# The full-size evidence runs (issues 37-39: hybrid + STDB, SNN2ANN, pretraining on all of Fashion-MNIST)
# as ONE background queue: one run at a time, niced, logged, resumable, from its own git worktree at a
# fixed commit (recorded in every run's queue_run.json and in its summary.json's environment).
#
#   bash experiments/evidence_queue.sh [COMMIT] [ROOT]        # from the repository root
#   setsid nohup bash experiments/evidence_queue.sh HEAD > /dev/null 2>&1 &
#   CHECK=1 bash experiments/evidence_queue.sh HEAD [ROOT]    # first: check every unfinished run's command
#
# CHECK=1 runs nothing: for every run not finished under ROOT it runs `launch.py ... --check` in this
# checkout (its .venv, else python3) and prints "ok" or the one-line error, so a typo in an override
# stops the queue before its hours start, not when it reaches that run; exit 1 if any command is bad.
# COMMIT (default HEAD) is checked out, detached, into ROOT/worktree-<sha>, with its own virtual
# environment (ROOT/venv-<sha>, the pinned versions of constraints.txt); the queue then runs the
# worktree's copy of this script, so that editing this checkout never changes a queue or a run in
# flight. ROOT (default /work/evidence) is outside the repository: runs, checkpoints and logs are never
# committed; the report scripts (experiments/*_60k_report.py ROOT) read them and write docs/.
# Re-running resumes: a run with ROOT/NAME/queue_run.json is done; an interrupted one continues from its
# last checkpoint (a queue restarted at another commit continues it there: queue_run.json lists every
# commit that ran part of it). A second queue on the same ROOT refuses. Needs `apt-get install
# dataset-fashion-mnist`.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=$(git -C "$REPO" rev-parse "${1:-HEAD}")
ROOT=${2:-/work/evidence}
SHORT=${COMMIT:0:7}
WT="$ROOT/worktree-$SHORT"
VENV="$ROOT/venv-$SHORT"
mkdir -p "$ROOT/logs"
say() { echo "$(date -u +%FT%TZ) $*" | tee -a "$ROOT/queue.log"; }

if [[ ${CHECK:-0} != 1 && $REPO != "$WT" ]]; then
  if [[ ! -d $WT ]]; then
    git -C "$REPO" worktree add --detach "$WT" "$COMMIT" >/dev/null
  fi
  exec bash "$WT/experiments/evidence_queue.sh" "$COMMIT" "$ROOT"
fi
if [[ ${CHECK:-0} != 1 ]]; then
  exec 9>"$ROOT/queue.lock"
  if ! flock -n 9; then
    echo "evidence queue: another queue is running on $ROOT (lock $ROOT/queue.lock); wait for it or stop it" >&2
    exit 2
  fi
  if [[ ! -x $VENV/bin/python ]]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >>"$ROOT/logs/venv.log" 2>&1
    "$VENV/bin/python" -m pip install -q -c "$WT/constraints.txt" -e "$WT" >>"$ROOT/logs/venv.log" 2>&1
  fi
  PY="$VENV/bin/python"
  say "queue at $SHORT"
fi

# run NAME LAUNCH-ARGS...: one launch.py run into ROOT/NAME, logged to ROOT/logs/NAME.log.
run() {
  local name=$1
  shift
  local workdir="$ROOT/$name"
  if [[ -f $workdir/queue_run.json ]]; then
    return 0
  fi
  mkdir -p "$(dirname "$ROOT/logs/$name.log")" "$workdir"
  echo "$COMMIT" >>"$workdir/queue_commits.txt"
  say "start $name (load $(cut -d' ' -f1-3 /proc/loadavg))"
  local t0 rc=0
  t0=$(date +%s)
  (cd "$WT" && nice -n 10 "$PY" launch.py "$@" --workdir "$workdir") >>"$ROOT/logs/$name.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    say "FAILED $name (exit $rc; log $ROOT/logs/$name.log); the queue goes on"
    return 0
  fi
  "$PY" - "$workdir" "$COMMIT" "$t0" "$name" "$@" <<'EOF'
import json, os, sys, time
workdir, commit, t0, name, *args = sys.argv[1:]
with open(os.path.join(workdir, "queue_commits.txt")) as f:
    commits = list(dict.fromkeys(line.strip() for line in f if line.strip()))
record = {
    "name": name,
    "commit": commit,
    "commits": commits,  # every commit that ran part of this run (a queue restarted at a newer one resumes it)
    "command": "python launch.py " + " ".join(args),
    "queue_seconds_last_part": time.time() - float(t0),
    "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "load_average_at_end": os.getloadavg(),
}
path = os.path.join(workdir, "queue_run.json")
with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=1)
os.replace(path + ".tmp", path)
EOF
  say "done $name"
}

if [[ ${CHECK:-0} == 1 ]]; then  # run NAME ARGS: check the command only
  BAD=0
  PY=$REPO/.venv/bin/python
  [[ -x $PY ]] || PY=python3
  run() {
    local name=$1
    shift
    if [[ -f $ROOT/$name/queue_run.json ]]; then
      echo "finished  $name"
    elif out=$(cd "$REPO" && "$PY" launch.py "$@" --workdir "$ROOT/$name" --check 2>&1); then
      echo "ok        $name"
    else
      echo "BAD       $name: $(echo "$out" | tail -1)"
      BAD=1
    fi
  }
fi

Q=(--config.train.progress_bar=False --config.train.tensorboard=False)
QA=("${Q[@]}" --config.ann.train.progress_bar=False --config.ann.train.tensorboard=False)
QP=("${Q[@]}" --config.pretrain.train.progress_bar=False --config.pretrain.train.tensorboard=False)

hybrid() {  # issue 37: arch seed
  local preset=fashion_mnist_60k
  [[ $1 == vgg ]] || preset="fashion_mnist_60k,$1"
  run "hybrid/$1_s$2" --config "configs/hybrid_stdb.py:$preset" --config.seed="$2" "${QA[@]}"
}
snn2ann() {  # issue 38: seed -- BPTT at T_b = 8, SNN2ANN at 0.625 T_b = 5 and at T_b
  run "snn2ann/bptt_t8_s$1" --config configs/snn2ann.py:fashion_mnist_60k,bptt --config.seed="$1" "${Q[@]}"
  run "snn2ann/snn2ann_t5_s$1" --config configs/snn2ann.py:fashion_mnist_60k --config.model.time_steps=5 \
    --config.seed="$1" "${Q[@]}"
  run "snn2ann/snn2ann_t8_s$1" --config configs/snn2ann.py:fashion_mnist_60k --config.seed="$1" "${Q[@]}"
}
hybrid_levers() {  # issue 37, claim (b): STDB at T_s = 8 ends 1.9 points short of conversion at 64 on VGG
  # seed 0. Is T_s = 8 the limit, or STDB? The reference code's linear surrogate (live without an earlier
  # spike), from the same ANN, start and schedule; the sweep only at T_s (the ANN is restored, not trained).
  run "hybrid/vgg_linear_s$1" --config configs/hybrid_stdb.py:fashion_mnist_60k --config.seed="$1" \
    --config.ann.checkpoint="$ROOT/hybrid/vgg_s$1" --config.model.surrogate=linear \
    --config.conversion.eval_time_steps="(8,)" "${QA[@]}"
  # ... or the SNN's dropout (0.3, official), which kept STDB below conversion on the small ResNet20 preset.
  run "hybrid/vgg_nodrop_s$1" --config configs/hybrid_stdb.py:fashion_mnist_60k --config.seed="$1" \
    --config.ann.checkpoint="$ROOT/hybrid/vgg_s$1" --config.model.dropout=0.0 \
    --config.conversion.eval_time_steps="(8,)" "${QA[@]}"
}
best_of() {  # the best test accuracy of a finished run (0: not finished, so no early stop)
  python3 -c 'import json, sys
try: print(json.load(open(sys.argv[1]))["best_test_accuracy"])
except OSError: print(0.0)' "$1/summary.json"
}
pretrain() {  # issue 39: seed -- the two scratch SNNs first: their best accuracies are the targets. Time to
  # accuracy, as MLPerf measures it: a pretrained arm stops after the first epoch that reaches its scratch
  # SNN's best (train.stop_at_accuracy; the same run cut short, the schedule unchanged).
  local P="$ROOT/pretrain"
  # The issue's rule for the scratch SNNs: until test accuracy gains < 0.3 points over 2 epochs (cap: train.epochs).
  local PLATEAU=(--config.train.stop_on_plateau_epochs=2 --config.train.stop_on_plateau_gain=0.003)
  run "pretrain/scratch_s$1" --config configs/pretrain.py:pipe_s,fashion_mnist_60k,scratch --config.seed="$1" \
    "${PLATEAU[@]}" "${QP[@]}"
  run "pretrain/scratch_events_s$1" --config configs/pretrain.py:pipe_d,fashion_mnist_60k,full,scratch \
    --config.seed="$1" "${PLATEAU[@]}" "${QP[@]}"
  local S E
  S=$(best_of "$P/scratch_s$1")
  E=$(best_of "$P/scratch_events_s$1")
  run "pretrain/pipe_s_s$1" --config configs/pretrain.py:pipe_s,fashion_mnist_60k --config.seed="$1" \
    --config.train.stop_at_accuracy="$S" "${QP[@]}"
  run "pretrain/pipe_d_official_s$1" --config configs/pretrain.py:pipe_d,fashion_mnist_60k,official \
    --config.pretrain.checkpoint="$P/pipe_s_s$1" --config.seed="$1" --config.train.stop_at_accuracy="$E" "${QP[@]}"
  run "pretrain/pipe_d_full_s$1" --config configs/pretrain.py:pipe_d,fashion_mnist_60k,full \
    --config.pretrain.checkpoint="$P/pipe_s_s$1" --config.seed="$1" --config.train.stop_at_accuracy="$E" "${QP[@]}"
}
options() {  # issue 43: seed -- IDSNN (60k preset, transplant + KD) with LIF, PSN + TET, SLTT; one teacher
  local QT=("${Q[@]}" --config.teacher.train.progress_bar=False --config.teacher.train.tensorboard=False)
  run "options/lif_s$1" --config configs/idsnn.py:fashion_mnist_60k --config.seed="$1" "${QT[@]}"
  local T="--config.teacher.checkpoint=$ROOT/options/lif_s$1"  # the LIF run's teacher: same seed, trained once
  run "options/psn_tet_s$1" --config configs/idsnn.py:fashion_mnist_60k --config.model.neuron=psn \
    --config.train.loss=tet "$T" --config.seed="$1" "${QT[@]}"
  # Unrolled: the same SLTT step (tests/train/test_sltt.py), ~10x faster on XLA:CPU; memory is not the limit here.
  run "options/sltt_s$1" --config configs/idsnn.py:fashion_mnist_60k --config.train.through_time=sltt \
    --config.train.sltt_unroll=True "$T" --config.seed="$1" "${QT[@]}"
}

pretrain_calibration() {  # issue 39: at width 16 one seed of the five arms is ~9 CPU-hours (46 SNN epochs at
  # ~12 min), the issue's budget ~8 for all three seeds. Width 8 trains ~2.2x faster (benchmarks/train_step.py,
  # side by side, 2026-12-07); does its scratch SNN still reach the 90 % floor in the preset's 10 epochs?
  run pretrain/calib_w8_scratch_s0 --config configs/pretrain.py:pipe_s,fashion_mnist_60k,scratch \
    --config.model.width=8 --config.seed=0 "${QP[@]}"
  # The scratch arm trains with the official FINE-TUNING schedule (lr x0.3 at epochs 2/4/6/8): after 3
  # epochs its lr is 0.3x, after 5 0.09x. Width 8 was at 84.9 % after epoch 3 on it. A scratch SNN
  # deserves a from-scratch schedule: one cosine decay over the same 10 epochs.
  run pretrain/calib_w8_cosine_scratch_s0 --config configs/pretrain.py:pipe_s,fashion_mnist_60k,scratch \
    --config.model.width=8 --config.optim.schedule=cosine --config.optim.milestones="()" --config.seed=0 "${QP[@]}"
}
snn2ann_calibration() {  # issue 38: with the official regularisation (conv dropout 0.25, Adam L2 5e-4) the
  # BPTT net underfit at 8 epochs on 60k (89.8 %, floor 91 %): 3 epochs on 10,000 images per recipe. The
  # fashion_mnist_60k preset now has neither; OFFICIAL restores them (the runs of 2026-12-06 ran at 92c55f3,
  # whose preset had them, without these overrides: their queue_run.json has that command).
  local C=(--config.data.train_subset=10000 --config.train.epochs=3 --config.seed=0 "${Q[@]}")
  local OFFICIAL=(--config.model.dropout="(0.25,0.25,0.0)" --config.optim.weight_decay=0.0005)
  local S=configs/snn2ann.py:fashion_mnist_60k
  run snn2ann/calib10k_bptt_officialreg_s0 --config "$S,bptt" "${OFFICIAL[@]}" "${C[@]}"
  run snn2ann/calib10k_bptt_wd0_s0 --config "$S,bptt" --config.model.dropout="(0.25,0.25,0.0)" "${C[@]}"
  run snn2ann/calib10k_bptt_noreg_s0 --config "$S,bptt" "${C[@]}"
  run snn2ann/calib10k_snn2ann_t8_noreg_s0 --config "$S" "${C[@]}"
  run snn2ann/calib10k_snn2ann_t8_officialreg_s0 --config "$S" "${OFFICIAL[@]}" "${C[@]}"
}

# Issue by issue, the one nearest its end first (the queue runs ~3 h per session, alone: a second
# process halves it). Seed 0 of each experiment came first (each one's floor shows early); now the
# hybrid's six runs and its lever, then SNN2ANN's nine, then pretraining's fifteen. SNN2ANN's arms
# follow the calibration of its BPTT reference (a network below the floor says nothing).
hybrid vgg 0
options 0  # closes issue 43
pretrain_calibration  # sizes issue 39 early (about 1 h)
hybrid resnet20 0
hybrid_levers 0
for S in 1 2; do
  hybrid vgg "$S"
  hybrid resnet20 "$S"
done
snn2ann_calibration
for S in 0 1 2; do
  snn2ann "$S"
done
for S in 0 1 2; do
  pretrain "$S"
done
if [[ ${CHECK:-0} == 1 ]]; then
  exit "$BAD"
fi
say "queue finished"
