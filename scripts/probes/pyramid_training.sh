#!/usr/bin/env bash
# Probe: training speed from files, in canvases per second: Megapixel MNIST from its 1500² PNG files and
# from the same canvases as 24,000² pyramidal TIFFs (the first 500 canvases of
# each split; 200 of them scored for validation and test), the cells variant's defaults, two epochs each (the
# second is the measure: the first warms up) with one DataLoader worker reading ahead, and
# then one without. Nothing else may run meanwhile. Records land in records/pyramid_training/<name>/.
#   bash scripts/probes/pyramid_training.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
DATA=${SACCADE_DATA:-data}
$PY -m saccadelib data megapixel-png --split all --limit 500 --out "$DATA/megapixel_png_500"
$PY -m saccadelib data megapixel-pyramid --side 24000 --split all --limit 500 --out "$DATA/megapixel_pyramid_500/24000"
for source in png_1500 pyramid_24000; do
  case $source in
    png_1500) folder="$DATA/megapixel_png_500" ;;
    pyramid_24000) folder="$DATA/megapixel_pyramid_500/24000" ;;
  esac
  for workers in 1 0; do
    name="${source}_workers${workers}"
    echo "== $name"
    $PY -m saccadelib train --model saccade_cells --images "$folder" --manifest "$folder/manifest.csv" \
        --train epochs=2 --train threads=2 --train workers=$workers --train val_size=200 --train test_size=200 \
        --out "runs/probes/pyramid_training/$name" --record "records/pyramid_training/$name"
  done
done
