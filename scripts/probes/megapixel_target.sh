#!/usr/bin/env bash
# Probe: the Megapixel MNIST target (majority label): our model (experiment 06's recipe) and the proxy-only
# CNN at the same 128² proxy, each for at most 60 training minutes (the REINFORCE variant 30), one seed, a
# cosine learning rate over the epochs that fit (from their measured epoch times, validation included). Records land in
# records/megapixel_target/<name>/ with their commands; nothing else may run meanwhile.
#   bash scripts/probes/megapixel_target.sh [NAME ...]   # all, or some of the names below
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
TRAIN="--train time_budget_s=3600 --train lr_schedule=cosine --train threads=2"
RECIPE="--set classifier_reads=crops --set loss.reconstruction_weight=0.01 --set loss.every_step=true \
 --set loss.kl_free_bits=1 --set loss.reconstruction_glimpses=one --set glimpses=6 --set crop_size=32 \
 --set window.min_scale=0.03 --set window.max_scale=0.1 --set init_scale=0.04 --set proxy_size=128 \
 --set posterior_head=cells --set loss.cell_kl_weight=0.01"
declare -A RUNS=(
  [saccade_cells]="--model saccade_cells --task megapixel_majority $RECIPE --set cell_gradient=attention_sampling --train epochs=110"
  [saccade_cells_reinforce]="--model saccade_cells --task megapixel_majority $RECIPE --set cell_gradient=reinforce --train epochs=55 --train time_budget_s=1800"
  [proxy_cnn_128]="--model proxy_cnn --task megapixel_majority --set proxy_size=128 --train epochs=80"
  [proxy_cnn_128_30min]="--model proxy_cnn --task megapixel_majority --set proxy_size=128 --train epochs=40 --train time_budget_s=1800"
  # the whole-image CNN a practitioner would try: ResNet-18 on a 500² downsample (digits about 9 px), batches
  # of 32 so that the few epochs that fit still take many steps
  [resnet18_500_30min]="--model resnet18_downsampled --task megapixel_majority --set input_side=500 --train epochs=10 --train time_budget_s=1800 --train batch_size=32 --train lr_schedule=constant"
)
ORDER=(saccade_cells saccade_cells_reinforce proxy_cnn_128 proxy_cnn_128_30min resnet18_500_30min)
for name in "${@:-${ORDER[@]}}"; do
  echo "== $name"
  # shellcheck disable=SC2086
  $PY -m saccadelib train $TRAIN ${RUNS[$name]} --out "runs/probes/megapixel_target/$name" \
      --record "records/megapixel_target/$name"
done
