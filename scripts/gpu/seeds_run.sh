#!/usr/bin/env bash
# The identification recipe repeated with seeds 0-2 on one GPU, side by side, with the CPU schedule's
# epochs; each stops at BUDGET seconds of training (records/identification_100_gpu_seeds_h100/).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_out}; mkdir -p "$OUT"
python -c "from saccadelib.datasets import mnist; print(mnist.prepare_mnist(try_torchvision=False))" || exit 1
COMMON="--set loss.reconstruction_weight=0.01 --set loss.every_step=true --set window.max_scale=0.45 --set init_scale=0.35 --set loss.kl_free_bits=1.0 --set posterior_trains_encoder=false --train lr_schedule=cosine --train threads=2 --train val_size=2000 --train device=cuda --train workers=1 --train time_budget_s=${BUDGET:-300}"
for seed in 0 1 2; do
  timeout ${TIMEOUT:-400} python -m saccadelib train --task identification --out runs/gpu/identification_s$seed --set classifier_reads=crops+state+proxy --set init_layout=grid $COMMON \
    --train epochs=56 --train seed=$seed --record "$OUT/identification_s$seed" > "$OUT/seed$seed.log" 2>&1 &
done
wait
tail -n 3 "$OUT"/*.log
