#!/usr/bin/env bash
# The main job: set up .venv if needed, prepare the data, and regenerate results/.
# (The full study runner arrives with the experiment notebooks; today this prepares MNIST,
# records the fixed evaluation sets' hashes and measures the data generator.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
"$PYTHON_BIN" -m saccadelib data mnist
"$PYTHON_BIN" -m saccadelib data two-digit
"$PYTHON_BIN" -m saccadelib bench-generator
