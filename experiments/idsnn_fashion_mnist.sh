#!/usr/bin/env bash
# IDSNN on Fashion-MNIST (CPU preset): the four-arm ablation and the controlled runs of docs/idsnn.md.
# Usage: bash experiments/idsnn_fashion_mnist.sh [ROOT] [part]   (part: ablation | causes | all; default all)
# Needs `apt-get install dataset-fashion-mnist`. Run from the repository root. Each training is one
# `launch.py` / ablation call: re-running skips what is finished. Seeds 0 and 1 (a third seed of the
# ablation: --seeds 2 with another --workdir; experiments/idsnn_report.py reads several roots).
set -euo pipefail
ROOT=${1:-runs/idsnn_fmnist}
PART=${2:-all}
PY=${PYTHON:-python}
QUIET=(--config.train.progress_bar=False --config.teacher.train.progress_bar=False)

if [[ $PART == ablation || $PART == all ]]; then
  # baseline, init-only, KD-only (alpha 0.5), IDSNN (alpha 0.3); one ResNet34 ANN teacher per seed.
  $PY -m snnjax.methods.idsnn.ablation --config configs/idsnn.py:fashion_mnist "${QUIET[@]}" --workdir "$ROOT" --seeds 0,1
fi

if [[ $PART == causes || $PART == all ]]; then
  for S in 0 1; do
    # (f) a same-depth ResNet18 ANN (same data, schedule and seed as the ResNet34 teacher) ...
    $PY launch.py --config configs/teacher.py:fashion_mnist --config.model.name=resnet18 --config.seed=$S \
      --config.train.progress_bar=False --workdir "$ROOT/seed$S/teacher_rn18"
    # ... as the transplant source (every student block has its own teacher block: no depth mapping),
    $PY launch.py --config configs/idsnn.py:fashion_mnist,init_only --config.seed=$S "${QUIET[@]}" \
      --config.transplant.checkpoint="$ROOT/seed$S/teacher_rn18" --workdir "$ROOT/seed$S/init_only_rn18"
    # ... and the official code's two-checkpoint recipe: init from the ResNet18, KD from the ResNet34
    # (the ablation's teacher of this seed: wait until that stage has finished, when run side by side).
    until [[ -f "$ROOT/seed$S/teacher/teacher_summary.json" ]]; do sleep 30; done
    $PY launch.py --config configs/idsnn.py:fashion_mnist --config.seed=$S "${QUIET[@]}" \
      --config.transplant.checkpoint="$ROOT/seed$S/teacher_rn18" --config.teacher.checkpoint="$ROOT/seed$S/teacher" \
      --workdir "$ROOT/seed$S/idsnn_rn18init_rn34kd"
  done
  # (h) a transplanted student with a one-epoch linear learning-rate warm-up.
  $PY launch.py --config configs/idsnn.py:fashion_mnist,init_only --config.seed=0 "${QUIET[@]}" \
    --config.teacher.checkpoint="$ROOT/seed0/teacher" --config.optim.warmup_epochs=1 \
    --workdir "$ROOT/seed0/init_only_warmup1"
fi
