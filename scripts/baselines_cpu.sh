#!/usr/bin/env bash
# The CPU-budget baselines recorded in records/baselines/, one after another on 2 cores.
# Budget = the model's budget for the task (sum 30 min, identification 60 min). Each run's epoch count is
# sized to that budget from a clean one-epoch probe of the same model (s/epoch in the comment), so the
# result does not depend on what else shares the CPU; time_budget_s is only a safety cap at 1.5x.
# A run whose record exists is skipped; an interrupted run resumes from its checkpoint.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
RECIPE="--set classifier_reads=crops+state+proxy --set loss.reconstruction_weight=0.01 --set loss.every_step=true --set window.max_scale=0.45 --set init_scale=0.35 --set loss.kl_free_bits=1.0 --set posterior_trains_encoder=false"

run() {  # run NAME TASK MODEL BUDGET_S ARGS...
  local name=$1 task=$2 model=$3 budget=$4; shift 4
  if [[ -f records/baselines/$name/metrics.json ]]; then echo "skip $name (recorded)"; return; fi
  echo "== $name $(date -u +%FT%TZ)"
  "$PYTHON_BIN" -m saccadelib train --model "$model" --task "$task" --out "runs/baselines/$name" \
    --train lr_schedule=cosine --train threads=2 --train val_size=2000 \
    --train time_budget_s=$((budget * 3 / 2)) "$@" --record "records/baselines/$name"
}

# sum 100², 30 min
run sum_grid_glimpses_cpu30 sum grid_glimpses 1800 --set glimpses=2 $RECIPE --train epochs=48  # our two-glimpse sum model's epochs
run sum_proxy_cnn_cpu30 sum proxy_cnn 1800 --train epochs=120                # 14.2 s/epoch
run sum_ram_cpu30 sum ram 1800 --train epochs=120                            # 13.4 s/epoch
# identification 100², 60 min
run identification_grid_glimpses_cpu60 identification grid_glimpses 3600 --set init_layout=grid $RECIPE --train epochs=56  # our identification model's schedule
run identification_resnet18_cpu60 identification resnet18 3600 --train epochs=11  # ~292 s/epoch (sum)
run identification_proxy_cnn_cpu60 identification proxy_cnn 3600 --train epochs=230  # 15.2 s/epoch
run identification_ram_cpu60 identification ram 3600 --train epochs=270      # 12.0 s/epoch
