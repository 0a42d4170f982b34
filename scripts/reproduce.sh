#!/usr/bin/env bash
# The main job: set up .venv if needed, prepare the data, and regenerate results/ by running every study
# notebook at the cpu profile (python -m saccadelib reproduce; resumable: rerun it to continue).
# Extra arguments go to the runner (e.g. --only 01_two_digit_sum, --force, --profile smoke).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
"$PYTHON_BIN" -m saccadelib data mnist
"$PYTHON_BIN" -m saccadelib data two-digit
# The generator benchmark is a committed result of the cpu profile: another profile (or a run sharing
# the machine with one) must not rewrite it.
profile=cpu
previous=""
for arg in "$@"; do
  case $arg in
    --profile=*) profile=${arg#--profile=} ;;
  esac
  if [ "$previous" = "--profile" ]; then profile=$arg; fi
  previous=$arg
done
if [ "$profile" = cpu ]; then
  "$PYTHON_BIN" -m saccadelib bench-generator
fi
"$PYTHON_BIN" -m saccadelib reproduce --profile cpu "$@"
