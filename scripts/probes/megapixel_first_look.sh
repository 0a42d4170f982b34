#!/usr/bin/env bash
# Probe: a first look at Megapixel MNIST (majority label) and native-size identification at 1000², each
# model for the same 8 training minutes (constant learning rate, stopped by time), one seed. Records land
# in records/megapixel_first_look/<name>/ with their commands; nothing else may run meanwhile.
#   bash scripts/probes/megapixel_first_look.sh [NAME ...]   # all, or some of the names below
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
BUDGET=${BUDGET:-480}
TRAIN="--train epochs=500 --train time_budget_s=$BUDGET --train lr_schedule=constant --train threads=2"
GLIMPSES="--set classifier_reads=crops --set loss.reconstruction_weight=0.01 --set loss.every_step=true \
 --set loss.kl_free_bits=1 --set loss.reconstruction_glimpses=one --set glimpses=6 --set crop_size=32 \
 --set window.min_scale=0.03 --set window.max_scale=0.1 --set init_scale=0.04 --set proxy_size=128"
declare -A RUNS=(
  [mp_proxy_cnn_64]="--model proxy_cnn --task megapixel_majority --set proxy_size=64"
  [mp_proxy_cnn_128]="--model proxy_cnn --task megapixel_majority --set proxy_size=128"
  [mp_oracle]="--model oracle_glimpses --task megapixel_majority $GLIMPSES"
  [mp_random]="--model random_glimpses --task megapixel_majority $GLIMPSES"
  [mp_salient]="--model salient_glimpses --task megapixel_majority $GLIMPSES"
  [mp_saccade_pooled]="--model saccade --task megapixel_majority $GLIMPSES --set init_layout=grid --set posterior_trains_encoder=false"
  [mp_saccade_map]="--model saccade --task megapixel_majority $GLIMPSES --set posterior_head=map --set posterior_trains_encoder=true"
  [mp_saccade_cells]="--model saccade_cells --task megapixel_majority $GLIMPSES --set posterior_head=cells --set cell_gradient=attention_sampling --set loss.cell_kl_weight=0.01"
  [mp_saccade_cells_kl1]="--model saccade_cells --task megapixel_majority $GLIMPSES --set posterior_head=cells --set cell_gradient=attention_sampling --set loss.cell_kl_weight=1"
  [mp_saccade_cells_ink1]="--model saccade_cells --task megapixel_majority $GLIMPSES --set posterior_head=cells --set cell_gradient=attention_sampling --set loss.cell_kl_weight=0.01 --set ink_power=1"
  [mp_saccade_cells_ink1_reach0]="--model saccade_cells --task megapixel_majority $GLIMPSES --set posterior_head=cells --set cell_gradient=attention_sampling --set loss.cell_kl_weight=0.01 --set ink_power=1 --set cell_reach=0"
  [mp_attention_sampling]="--model attention_sampling --task megapixel_majority --train clip_norm=1"
  [id1000_proxy_cnn_32]="--model proxy_cnn --task identification --set proxy_size=32 --train canvas_side=1000 --train train_size=5000 --train val_size=1000"
  [id1000_saccade_cells]="--model saccade_cells --task identification $GLIMPSES --set posterior_head=cells --set cell_gradient=reinforce --set loss.cell_kl_weight=0.01 --train canvas_side=1000 --train train_size=5000 --train val_size=1000"
  [id1000_saccade_map]="--model saccade --task identification --set glimpses=4 --set classifier_reads=crops --set crop_size=32 --set window.min_scale=0.04 --set window.max_scale=0.2 --set init_scale=0.06 --set proxy_size=128 --set posterior_head=map --set loss.kl_free_bits=1 --set loss.reconstruction_weight=0.01 --set loss.every_step=true --set loss.reconstruction_glimpses=one --train canvas_side=1000 --train train_size=5000 --train val_size=1000"
)
ORDER=(mp_proxy_cnn_64 mp_proxy_cnn_128 mp_oracle mp_random mp_salient mp_saccade_pooled mp_saccade_map mp_saccade_cells
       mp_saccade_cells_kl1 mp_saccade_cells_ink1 mp_saccade_cells_ink1_reach0 mp_attention_sampling id1000_proxy_cnn_32 id1000_saccade_map id1000_saccade_cells)
for name in "${@:-${ORDER[@]}}"; do
  echo "== $name"
  # shellcheck disable=SC2086
  $PY -m saccadelib train ${RUNS[$name]} $TRAIN --out "runs/probes/megapixel_first_look/$name" \
      --record "records/megapixel_first_look/$name"
done
