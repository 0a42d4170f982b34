#!/usr/bin/env bash
# The efficiency benchmark on a GPU (recorded in records/efficiency_gpu_h100/).
# Usage on the GPU machine, from the repository root: OUT=some/folder bash scripts/gpu/bench_run.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_out}; mkdir -p "$OUT/efficiency"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python -c "from saccadelib.datasets import mnist; print(mnist.prepare_mnist(try_torchvision=False))" || exit 1
timeout ${BENCH_TIMEOUT:-420} python -m saccadelib bench --device cuda --repeats 5 --threads 8 --out "$OUT/efficiency" 2>&1 | tee "$OUT/bench.log"
ls -la "$OUT/efficiency"
