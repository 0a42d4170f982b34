"""The linter CI runs: pyflakes' checks (unused and undefined names, redefinitions), syntax errors and
imports at the top of the module over the library, the tests and the scripts (pyproject's [tool.ruff]);
and the library's sizes: modules a reader takes in whole, functions a reader takes in at once."""
import ast
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


def test_no_library_module_is_over_400_lines_and_no_function_over_80():
    too_long = []
    for path in (REPO_ROOT / "saccadelib").rglob("*.py"):
        text = path.read_text()
        name = path.relative_to(REPO_ROOT)
        if text.count("\n") > 400:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        too_long += [f"{name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
                     for node in ast.walk(ast.parse(text)) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and node.end_lineno - node.lineno + 1 > 80]
    assert not too_long, too_long
