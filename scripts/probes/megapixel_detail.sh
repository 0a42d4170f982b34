#!/usr/bin/env bash
# Probe: reading Megapixel MNIST's digits at their own detail. The cells variant's windows are 3-10% of the
# 1500² side, read into 32² crops: a window can be no smaller than 45 px while a digit is 28, so even oracle
# windows read a digit at 0.71 crop pixels per canvas pixel, and they cap the table at about 95.5%. Each arm
# gives the digits about one crop pixel per canvas pixel or more: 48² or 64² crops of the same windows (the
# crop net's stem folds 3×3 or 4×4 pixel blocks, so the rest of it runs at 16² and costs what 32² crops do),
# or windows down to 2% of the side (30 px) read at 32². Oracle windows (five, one per digit) say what the
# reader can reach; the cells variant what a policy reaches with it. 50 epochs of the 5,000 training
# canvases (about 30 minutes each on 2 cores), cosine, one seed; records in records/megapixel_detail/<name>/.
#   bash scripts/probes/megapixel_detail.sh [NAME ...]   # all, or some of the names below (a rerun resumes)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
THREADS=${THREADS:-2}
TRAIN="--train epochs=50 --train train_size=5000 --train val_size=1000 --train lr_schedule=cosine --train threads=$THREADS"
ORACLE="--model oracle_glimpses --recipe small_glimpses --set glimpses=5"
NAMES="oracle_crop32 oracle_crop48 oracle_crop64 oracle_min002 cells_crop32 cells_crop48 cells_min002"
arm() {  # the training settings of probe $1
  case $1 in
    oracle_crop32) echo "$ORACLE" ;;
    oracle_crop48) echo "$ORACLE --set crop_size=48 --set crop_fold=3" ;;
    oracle_crop64) echo "$ORACLE --set crop_size=64 --set crop_fold=4" ;;
    oracle_min002) echo "$ORACLE --set window.min_scale=0.02" ;;
    cells_crop32) echo "--model saccade_cells" ;;
    cells_crop48) echo "--model saccade_cells --set crop_size=48 --set crop_fold=3" ;;
    cells_min002) echo "--model saccade_cells --set window.min_scale=0.02 --set init_scale=0.03" ;;
    *) echo "unknown probe $1; valid: $NAMES" >&2; return 2 ;;
  esac
}
# shellcheck disable=SC2086
for name in ${*:-$NAMES}; do
  settings=$(arm "$name")
  echo "== $name"
  # shellcheck disable=SC2086
  $PY -m saccadelib train --task megapixel_majority $settings $TRAIN \
      --out "runs/probes/megapixel_detail/$name" --record "records/megapixel_detail/$name"
done
