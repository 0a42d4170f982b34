#!/usr/bin/env bash
# The test command: set up .venv if needed, make sure MNIST is under data/, run the test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not slow"`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
"$PYTHON_BIN" -m saccadelib data mnist
exec "$PYTHON_BIN" -m pytest "$@"
