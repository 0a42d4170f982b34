#!/usr/bin/env bash
# The 144-tile ResNet-18 trained on identification at 2528² on a GPU (bf16, naive mode;
# records/baselines/identification_2528_resnet18_tiles_h100/).
# Usage on the GPU machine, from the repository root: OUT=some/folder bash scripts/gpu/tiles_run.sh
# Budget: about 9 minutes in all (MNIST from data/downloads, smoke check, ~6 minutes of training).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "from saccadelib.datasets import mnist; print(mnist.prepare_mnist(try_torchvision=False))" || exit 1
python scripts/gpu/smoke.py --tiles-batch 8 2>&1 | tee "$OUT/smoke.log"
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
timeout 470 python -m saccadelib train --model resnet18_tiles --task identification --out runs/gpu/id_tiles \
  --set chunk_tiles=144 --train device=cuda --train precision=bf16 --train batch_size=8 \
  --train train_size=4096 --train epochs=100 --train time_budget_s=330 --train val_size=1000 \
  --train eval_batch_size=16 --train workers=2 \
  --record "$OUT/id_tiles" 2>&1 | tee "$OUT/id_tiles.log"
cp runs/gpu/id_tiles/history.csv "$OUT/id_tiles_history.csv" 2>/dev/null || true
nvidia-smi --query-gpu=memory.used --format=csv
