#!/usr/bin/env bash
# The model bench-pyramid scores, then the benchmark: saccade_cells (its registry defaults, the recipe
# small_glimpses) trained on Megapixel MNIST (majority) as experiment 06 trains it at the cpu profile
# (13 epochs of 5,000 canvases, cosine, 500 validation canvases: its 7 minutes), one seed; ResNet-18 on
# the 500² downsample of the same canvases, trained for the same minutes (epochs of 1,000 canvases, as many
# as start within 6 minutes: at about 2 minutes an epoch a 5,000-canvas epoch would not fit); then
# `bench-pyramid` on the first 100 test canvases at 6,000², 24,000² and 96,000² (about 0.5 GB of files
# under data/megapixel_pyramid/). Nothing else may run meanwhile (the benchmark times predict).
#   bash scripts/probes/pyramid_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
$PY -m saccadelib data megapixel
$PY -m saccadelib train --model saccade_cells --task megapixel_majority --train epochs=13 --train train_size=5000 \
    --train val_size=500 --train lr_schedule=cosine --train threads=2 \
    --out runs/probes/pyramid_model --record records/pyramid_model
$PY -m saccadelib train --model resnet18_downsampled --set input_side=500 --task megapixel_majority \
    --train epochs=100 --train train_size=1000 --train val_size=500 --train time_budget_s=360 --train threads=2 \
    --out runs/probes/pyramid_resnet18_500 --record records/pyramid_resnet18_500
$PY -m saccadelib bench-pyramid --checkpoint runs/probes/pyramid_model/best.pt --limit 100 \
    --resnet-checkpoint runs/probes/pyramid_resnet18_500/best.pt
