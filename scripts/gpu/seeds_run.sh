#!/usr/bin/env bash
# GPU run for issue 3: the CPU recipes (sum v2, identification v3) repeated with seeds 0-2 on one GPU,
# six runs side by side, same epochs as on the CPU; each stops at BUDGET seconds of training.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_out}; mkdir -p "$OUT"
python -c "from saccadelib import mnist; print(mnist.prepare_mnist(try_torchvision=False))" || exit 1
COMMON="--set loss.reconstruction_weight=0.01 --set loss.every_step=true --set window.max_scale=0.45 --set init_scale=0.35 --set loss.kl_free_bits=1.0 --set posterior_trains_encoder=false --train lr_schedule=cosine --train threads=2 --train val_size=2000 --train device=cuda --train workers=1 --train time_budget_s=${BUDGET:-300}"
for seed in 0 1 2; do
  timeout ${TIMEOUT:-400} python -m saccadelib train --task sum --out runs/gpu/sum_v2_s$seed --set glimpses=2 $COMMON \
    --train epochs=48 --train seed=$seed --record "$OUT/sum_v2_s$seed" > "$OUT/sum_v2_s$seed.log" 2>&1 &
  timeout ${TIMEOUT:-400} python -m saccadelib train --task identification --out runs/gpu/id_v3_s$seed --set init_layout=grid $COMMON \
    --train epochs=56 --train seed=$seed --record "$OUT/id_v3_s$seed" > "$OUT/id_v3_s$seed.log" 2>&1 &
done
wait
tail -n 3 "$OUT"/*.log
