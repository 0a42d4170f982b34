#!/usr/bin/env bash
# Probe: Megapixel MNIST (majority label) trained through its PNG files (`train --images`, the path your
# own images take) with the recipe of the in-memory run records/megapixel_target/saccade_cells_reinforce,
# same seed and schedule, stopped by time; then its best weights scored on the test canvases through the
# files and through the in-memory set. One seed; nothing else may run meanwhile.
#   bash scripts/probes/megapixel_files.sh [NAME ...]   # all, or some of: files files_workers1
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
DATA=${SACCADE_DATA:-data}/megapixel_png
$PY -m saccadelib data megapixel-png --split all --out "$DATA"  # skips the files already written
RECIPE="--set classifier_reads=crops --set loss.reconstruction_weight=0.01 --set loss.every_step=true \
 --set loss.kl_free_bits=1 --set loss.reconstruction_glimpses=one --set glimpses=6 --set crop_size=32 \
 --set window.min_scale=0.03 --set window.max_scale=0.1 --set init_scale=0.04 --set proxy_size=128 \
 --set posterior_head=cells --set loss.cell_kl_weight=0.01 --set cell_gradient=reinforce"
TRAIN="--train epochs=55 --train lr_schedule=cosine --train threads=2"
declare -A RUNS=(
  [files]="--train workers=0 --train time_budget_s=1500"
  [files_workers1]="--train workers=1 --train time_budget_s=1"  # one epoch: a DataLoader worker reading ahead
)
ORDER=(files files_workers1)
for name in "${@:-${ORDER[@]}}"; do
  echo "== $name"
  out="runs/probes/megapixel_files/$name" record="records/megapixel_files/$name"
  # shellcheck disable=SC2086
  $PY -m saccadelib train --model saccade_cells --images "$DATA" --manifest "$DATA/manifest.csv" $RECIPE $TRAIN \
      ${RUNS[$name]} --out "$out" --record "$record"
  [[ $name == files_workers1 ]] && continue  # one epoch, for its time: nothing to score
  $PY -m saccadelib evaluate --checkpoint "$out/best.pt" --images "$DATA/test" --labels "$DATA/test/labels.csv" \
      --out "$record/test_through_files"
  $PY scripts/probes/score_checkpoint.py "$out/best.pt" --task megapixel_majority --split test \
      --out "$record/test_in_memory.json"
done
