#!/usr/bin/env bash
# Hybrid conversion + STDB, SNN2ANN and pretraining on Fashion-MNIST (the CPU presets): the runs of
# docs/fmnist_results_other_pipelines.md. Then: python experiments/other_pipelines_report.py ROOT docs/
# Usage: bash experiments/other_pipelines_fashion_mnist.sh [ROOT] [part]
#   part: hybrid | snn2ann | pretrain | all (default all)
# Needs `apt-get install dataset-fashion-mnist`. Run from the repository root. Every run is one
# `launch.py` call into its own workdir: re-running resumes or skips what is finished.
set -euo pipefail
ROOT=${1:-runs/fmnist_other}
PART=${2:-all}
PY=${PYTHON:-python}
Q=(--config.train.progress_bar=False --config.train.tensorboard=False)
QP=("${Q[@]}" --config.pretrain.train.progress_bar=False --config.pretrain.train.tensorboard=False)

if [[ $PART == hybrid || $PART == all ]]; then
  # ANN (VGG5 width 16, 6,000 images), conversion with the official one-step spike delay, STDB at T = 16.
  $PY launch.py --config=configs/hybrid_stdb.py:fashion_mnist --config.seed=0 "${Q[@]}" --workdir="$ROOT/hybrid_delay_s0"
  # The same ANN converted and fine-tuned without the delay.
  $PY launch.py --config=configs/hybrid_stdb.py:fashion_mnist --config.seed=0 "${Q[@]}" --config.model.spike_delay=False \
    --config.ann.checkpoint="$ROOT/hybrid_delay_s0" --workdir="$ROOT/hyb_nodelay_s0"
fi

if [[ $PART == snn2ann || $PART == all ]]; then
  # 2,000 images, 6 epochs: official membrane dropout 0.5, none, and the BPTT arm; 3 seeds.
  for S in 0 1 2; do
    O=(--config.seed=$S --config.data.train_subset=2000 "${Q[@]}")
    $PY launch.py --config=configs/snn2ann.py:fashion_mnist "${O[@]}" --workdir="$ROOT/s2a_md05_s$S"
    $PY launch.py --config=configs/snn2ann.py:fashion_mnist "${O[@]}" --config.model.membrane_dropout=0.0 --workdir="$ROOT/s2a_md0_s$S"
    $PY launch.py --config=configs/snn2ann.py:fashion_mnist,bptt "${O[@]}" --workdir="$ROOT/s2a_bptt_s$S"
  done
fi

if [[ $PART == pretrain || $PART == all ]]; then
  # pipe-S (sharpened-ReLU ANN 6 epochs, then 6 fine-tuning epochs) vs the same 6 epochs from scratch;
  # pipe-D on fashion_mnist_events from that ANN: official (frozen, Adam) vs full fine-tuning.
  $PY launch.py --config=configs/pretrain.py:pipe_s,fashion_mnist --config.seed=0 "${QP[@]}" --workdir="$ROOT/ps_s0"
  $PY launch.py --config=configs/pretrain.py:pipe_s,fashion_mnist,scratch --config.seed=0 "${QP[@]}" --workdir="$ROOT/scratch_s0"
  # scratch with stage 1's time added to its budget: 8 epochs, the same x0.3 cuts stretched
  $PY launch.py --config=configs/pretrain.py:pipe_s,fashion_mnist,scratch --config.seed=0 "${QP[@]}" \
    --config.train.epochs=8 "--config.optim.milestones=(3,5)" --workdir="$ROOT/scratch8_s0"
  $PY launch.py --config=configs/pretrain.py:pipe_d,fashion_mnist,full,scratch --config.seed=0 "${QP[@]}" \
    --workdir="$ROOT/pd_scratch_s0"
  for MODE in official full; do
    $PY launch.py --config=configs/pretrain.py:pipe_d,fashion_mnist,$MODE --config.seed=0 "${QP[@]}" \
      --config.pretrain.checkpoint="$ROOT/ps_s0" --workdir="$ROOT/pd_${MODE/official/off}_s0"
  done
fi
