#!/usr/bin/env bash
# Create or reuse the project's virtual environment (.venv) and install what is missing.
# Sourced by scripts/test.sh and scripts/reproduce.sh; needs only Python >= 3.11 and the package registries.
# The install is pinned by requirements.lock and redone only when pyproject.toml or the lock change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SACCADE_VENV:-$ROOT/.venv}"

find_python() {
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "saccade: needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    echo "saccade: creating $VENV" >&2
    "$(find_python)" -m venv "$VENV"
fi
stamp="$VENV/.saccade-install"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -d' ' -f1) $ROOT"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$VENV/bin/python" -c 'import saccadelib, torchvision' 2>/dev/null; then
    echo "saccade: installing the project and its pinned dependencies into $VENV (first time: a few minutes, ~5 GB)" >&2
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$ROOT/requirements.lock" -e "$ROOT[study,slides,test]"
    echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export PYTHON_BIN="$VENV/bin/python"
