#!/usr/bin/env bash
# Probe: what RAM needs to learn on our 100² canvases. Our RAM stays at the label prior on sum and reaches
# 23.6% on identification at its plateau, while its glimpse network, core and classifier learn the digits
# when the locations are given (records/baselines/ram_location_probe: 79% on sum in 400 steps). Each arm
# changes one known failure mode on top of the arm before it, 40 epochs of 20,000 canvases (cosine, 2,000
# validation canvases, 2 threads), one seed, on sum and identification 100²:
#   base       today's RAM: 3 scales of 12, 24, 48 px read at 12², 6 glimpses, σ 0.15, reward 1 if right
#   sensor     a retina for 100²: 4 scales of 16, 32, 64, 128 px read at 16² (the coarsest sees the whole
#              canvas, so the first glimpse says where the digits are)
#   steps      + a classification loss on every glimpse's prediction
#   likelihood + the reward the final prediction's probability of the label, graded where 0/1 is all 0
#   core       + REINFORCE's gradient into the core (RAM's own formulation)
#   narrow     + location noise σ 0.05;   wide: + σ 0.3;   eight: + 8 glimpses
# Records land in records/ram_probes/<task>_<arm>/ with their commands.
#   bash scripts/probes/ram_probes.sh [TASK:ARM ...]   # all, or some (e.g. sum:sensor); a rerun resumes
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
THREADS=${THREADS:-2}  # 1 when another probe shares the two cores (accuracy at equal epochs does not mind)
TRAIN="--train epochs=40 --train lr_schedule=cosine --train threads=$THREADS --train val_size=2000"
SENSOR="--set patch=16 --set patch_fraction=0.16 --set scales=4"
STEPS="$SENSOR --set step_loss=true"
LIKELIHOOD="$STEPS --set reward=likelihood"
declare -A ARMS=(
  [base]=""
  [sensor]="$SENSOR"
  [steps]="$STEPS"
  [likelihood]="$LIKELIHOOD"
  [core]="$LIKELIHOOD --set policy_trains_core=true"
  [narrow]="$LIKELIHOOD --set location_std=0.05"
  [wide]="$LIKELIHOOD --set location_std=0.3"
  [eight]="$LIKELIHOOD --set glimpses=8"
)
ORDER=()
for arm in base sensor steps likelihood core narrow wide eight; do ORDER+=("sum:$arm" "identification:$arm"); done
for item in "${@:-${ORDER[@]}}"; do
  task=${item%%:*} arm=${item#*:}
  [ -n "${ARMS[$arm]+set}" ] || { echo "unknown arm $arm; valid: ${!ARMS[*]}" >&2; exit 2; }
  echo "== $task $arm"
  # shellcheck disable=SC2086
  $PY -m saccadelib train --model ram --task "$task" ${ARMS[$arm]} $TRAIN \
      --out "runs/probes/ram/${task}_$arm" --record "records/ram_probes/${task}_$arm"
done
