"""The linter CI runs: pyflakes' checks (unused and undefined names, redefinitions), syntax errors and
imports at the top of the module over the library, the tests and the scripts (pyproject's [tool.ruff])."""
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "saccadelib", "tests", "scripts"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_deferred_import_of_the_library_says_what_it_guards():
    """An import inside a function is allowed by a noqa that names the extra or the start-up cost it guards."""
    allowed = re.compile(r"# noqa: PLC0415 \((the (study|slides) extra|start-up: .+|POSIX only: .+)\)$")
    marked = [(path, line) for path in (REPO_ROOT / "saccadelib").rglob("*.py")
              for line in path.read_text().splitlines() if "PLC0415" in line]
    assert marked, "the library defers some imports (torch for the command line's --help)"
    unexplained = [f"{path.relative_to(REPO_ROOT)}: {line.strip()}" for path, line in marked if not allowed.search(line)]
    assert not unexplained, unexplained
