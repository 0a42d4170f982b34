#!/usr/bin/env bash
# Probe: how sharply the paper's method reads its windows, on identification 100². Each probe changes the
# window sizes or the crop they are read into, trained 40 epochs of 20,000 canvases (cosine schedule, 2,000
# validation canvases, 2 threads), one seed, beside the recipe itself at the same epochs. A learnt 45-px
# window read into a 32² crop sees a digit at 0.71 crop pixels per canvas pixel where an oracle window
# (the 28-px digit box) sees it at 1.14: these probes ask which of a smaller window or a larger crop closes
# the gap. Records land in records/window_probes/<name>/ with their commands; window statistics of each
# best checkpoint come from scripts/probes/window_stats.py.
#   bash scripts/probes/window_probes.sh [NAME ...]   # all, or some of the names below (a rerun resumes)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
THREADS=${THREADS:-2}  # 1 when another probe shares the two cores (accuracy at equal epochs does not mind)
TRAIN="--train epochs=40 --train lr_schedule=cosine --train threads=$THREADS --train val_size=2000"
declare -A RUNS=(
  [recipe]=""
  [crop64]="--set crop_size=64 --set crop_fold=4"  # 64² crops of today's windows: the fold keeps the crop net at 16²
  [crop48]="--set crop_size=48 --set crop_fold=3"
  [cap035]="--set window.max_scale=0.35 --set init_scale=0.3"
  [cap030]="--set window.max_scale=0.3 --set init_scale=0.28"
  # the original's reading: every window 0.3 of the side, read into 64² crops
  [fixed030_crop64]="--set window.mode=fixed --set window.fixed_scale=0.3 --set crop_size=64 --set crop_fold=4"
  [six_glimpses_cap035]="--set glimpses=6 --set window.max_scale=0.35 --set init_scale=0.3"
  [crop64_cap035]="--set crop_size=64 --set crop_fold=4 --set window.max_scale=0.35 --set init_scale=0.3"
  # wide windows to find, narrow ones to read: the cap falls from 0.45 to 0.3 over the first 20 epochs
  [narrowing]="--set window.narrow_to=0.3 --set window.narrow_epochs=20"
  # where the windows land: the recipe's centres sit 14-24 px from the nearest digit's (window statistics),
  # so a 45-px window cuts into a 28-px digit. A posterior that places the window by the soft-argmax of a
  # score map over the proxy's features, and a 64² proxy, ask whether placing more precisely reads better.
  [map]="--set posterior_head=map"
  [proxy64]="--set proxy_size=64"
  # what the posterior places windows from: the recipe's posterior reads the proxy features through a
  # stop-gradient and its classifier reads the crops alone, so only the decoder (at weight 0.01) and the
  # core shape those features. Either the location gradient trains them, or the reconstruction weighs 1
  # (Eq. 6's weight) so that they hold where the ink is.
  [encoder]="--set posterior_trains_encoder=true"
  [reconstruction]="--set loss.reconstruction_weight=1"
  # what the windows are trained to show: the recipe trains every glimpse's running prediction of the pair
  # (loss.every_step), so the first glimpse alone is asked for both digits and does best between them in
  # a window at the cap (it reads 44-50% alone where the oracle's first reads 12%). Only the last
  # prediction trained: each glimpse may frame one digit.
  [last_step]="--set loss.every_step=false"
  # the controls at the same 40 epochs, same classifier and recipe: windows on the quadrants (50 px) and
  # on the digits' boxes (the later --model wins)
  [grid]="--model grid_glimpses"
  [oracle]="--model oracle_glimpses"
  [grid_last_step]="--model grid_glimpses --set loss.every_step=false"
)
ORDER=(crop64 recipe crop48 map proxy64 cap035 last_step grid grid_last_step oracle encoder reconstruction narrowing fixed030_crop64 six_glimpses_cap035 cap030 crop64_cap035)
for name in "${@:-${ORDER[@]}}"; do
  [ -n "${RUNS[$name]+set}" ] || { echo "unknown probe $name; valid: ${ORDER[*]}" >&2; exit 2; }
  echo "== $name"
  # shellcheck disable=SC2086
  $PY -m saccadelib train --model saccade --task identification --recipe four_glimpses_grid_start ${RUNS[$name]} \
      $TRAIN --out "runs/probes/window/$name" --record "records/window_probes/$name"
done
