#!/usr/bin/env bash
# ResNet-18 on the whole 100² image, sum and identification side by side on one GPU, with the plateau
# profile's training settings (the plateau rule, learning rate /10 twice, fp32, batch 128) but no epoch
# cap: on our CPUs both cells stop at the plateau profile's cap while still rising. Each run stops at its
# plateau or at BUDGET seconds of training; then both are scored on the test canvases by digit overlap
# (records/baselines/resnet18_plateau_gpu/: one folder per task and SEED, overlap_sSEED.csv).
# Usage on the GPU machine, from the repository root: OUT=some/folder bash scripts/gpu/plateau_resnet_run.sh
# (DEVICE=cpu BUDGET=20 TRAIN_SIZE=256 VAL_SIZE=256 EXTRA="--train test_size=256" checks the command on a CPU in a minute.)
set -uo pipefail
mkdir -p runs/gpu  # logs and checkpoints stay here; $OUT gets one tar of the records and the scores
SEED=${SEED:-0}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_out}; mkdir -p "$OUT"
DEVICE=${DEVICE:-cuda}
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "from saccadelib.datasets import mnist; print(mnist.prepare_mnist(try_torchvision=False))" || exit 1
PLATEAU="--train lr_schedule=plateau --train plateau_epochs=10 --train plateau_margin=0.002 --train lr_decays=2"
for task in sum identification; do
  timeout $(( ${BUDGET:-400} + 120 )) python -m saccadelib train --model resnet18 --task $task \
    --out runs/gpu/${task}_s$SEED $PLATEAU --train seed=$SEED --train epochs=1000 --train device=$DEVICE \
    --train train_size=${TRAIN_SIZE:-20000} --train val_size=${VAL_SIZE:-5000} --train workers=2 \
    --train time_budget_s=${BUDGET:-400} ${EXTRA:-} --record runs/gpu/records/${task}_s$SEED \
    > runs/gpu/$task.log 2>&1 &
done
wait
tail -n 25 runs/gpu/*.log
python scripts/gpu/overlap_scores.py runs/gpu/records/overlap_s$SEED.csv runs/gpu/sum_s$SEED runs/gpu/identification_s$SEED
tar -C runs/gpu/records -cf "$OUT/records_s$SEED.tar" .
