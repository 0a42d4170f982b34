#!/usr/bin/env bash
# Identification at the paper's scale on a GPU (2528² lazy upsample, T=4 glimpses read at 64², batch 100)
# with the identification recipe's loss and policy settings (records/identification_2528_gpu_h100/).
# Usage on the GPU machine, from the repository root: OUT=some/folder bash scripts/gpu/paper_run.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_out}; mkdir -p "$OUT"
python -c "from saccadelib.datasets import mnist; print(mnist.prepare_mnist(try_torchvision=False))" || exit 1
timeout ${TRAIN_TIMEOUT:-540} python -m saccadelib train --task identification --out runs/gpu/id_paper --set classifier_reads=crops+state+proxy \
  --train image_side=2528 --set crop_size=64 --set glimpses=4 --set init_layout=grid \
  --set loss.reconstruction_weight=0.01 --set loss.every_step=true --set window.max_scale=0.45 \
  --set init_scale=0.35 --set loss.kl_free_bits=1.0 --set posterior_trains_encoder=false \
  --train device=cuda --train batch_size=100 --train epochs=${EPOCHS:-60} --train lr_schedule=cosine \
  --train time_budget_s=${BUDGET:-420} --train val_size=2000 --train workers=4 \
  --record "$OUT/id_paper" 2>&1 | tee "$OUT/id_paper.log"
cp runs/gpu/id_paper/history.csv "$OUT/id_paper_history.csv" 2>/dev/null || true
