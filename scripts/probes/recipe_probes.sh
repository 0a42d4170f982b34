#!/usr/bin/env bash
# Probe: changes to the paper's method's recipe on identification 100², each at the same 12 epochs of
# 20,000 canvases (cosine schedule, 2,000 validation canvases, 2 threads), one seed; compare with the
# recipe itself at those epochs (records/conv_blocks_equal_epochs/identification_float32 and _bf16).
# Records land in records/recipe_probes/<name>/ with their commands.
#   bash scripts/probes/recipe_probes.sh [NAME ...]   # all, or some of the names below
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
TRAIN="--train epochs=12 --train lr_schedule=cosine --train threads=2 --train val_size=2000"
declare -A RUNS=(
  [six_glimpses]="--set glimpses=6"
  [wider_windows]="--set window.max_scale=0.6 --set init_scale=0.45"
  [policy_warmup]="--train policy_warmup_epochs=2"
  [slow_policy]="--set policy_lr_scale=0.3"
  [fast_reader]="--set reader_lr_scale=2"  # reader 2e-3, policy 1e-3 (recorded as lr=0.002 with the policy at 0.5)
)
ORDER=(six_glimpses wider_windows policy_warmup slow_policy fast_reader)
for name in "${@:-${ORDER[@]}}"; do
  echo "== $name"
  # shellcheck disable=SC2086
  $PY -m saccadelib train --model saccade --task identification --recipe four_glimpses_grid_start ${RUNS[$name]} \
      $TRAIN --out "runs/probes/recipe/$name" --record "records/recipe_probes/$name"
done
