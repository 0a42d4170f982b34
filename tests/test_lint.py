"""The linter CI runs: pyflakes' checks (unused and undefined names, redefinitions) and syntax errors over
the library, the tests and the scripts (pyproject's [tool.ruff])."""
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "saccadelib", "tests", "scripts"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
