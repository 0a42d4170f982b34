#!/usr/bin/env bash
# The main job: set up .venv if needed, prepare the data, and regenerate results/.
# (The full study runner arrives with the experiment notebooks; today this prepares MNIST,
# records the fixed evaluation sets' hashes, measures the data generator and runs the efficiency benchmark.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
"$PYTHON_BIN" -m saccadelib data mnist
"$PYTHON_BIN" -m saccadelib data two-digit
"$PYTHON_BIN" -m saccadelib bench-generator
# Issue 5's efficiency benchmark on this machine's CPU (about 10 minutes on 2 cores).
"$PYTHON_BIN" -m saccadelib bench --device cpu --threads "${SACCADE_THREADS:-2}"
