"""Train the arms of one probe: each arm is one `python -m saccadelib train` command, written in a table.

A table (scripts/probes/arms/<probe>.toml) says what the probe asks and holds:
  command   the train arguments every arm shares, with `{arm}` where the arm's own settings go
  runs      the folder of the arms' run folders;  records   the folder of their records
  [values]  named pieces the command and the arms build on, `{name}` in any string; an environment
            variable of the upper-case name replaces one (THREADS=1 when another job shares the cores)
  [arms]    name = settings, in the order they run

    python scripts/probes/train_arms.py PROBE [NAME ...]        # all arms, or some; a rerun resumes
    python scripts/probes/train_arms.py PROBE --print [NAME ...] # the commands, nothing run
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ARMS_DIR = Path(__file__).resolve().parent / "arms"
REPO_ROOT = ARMS_DIR.parents[2]


def load_table(probe: str) -> dict:
    path = ARMS_DIR / f"{probe}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in ARMS_DIR.glob("*.toml")))
        raise SystemExit(f"no probe named {probe!r}; known probes: {known}")
    with path.open("rb") as handle:
        return tomllib.load(handle)


def resolved_values(table: dict, environ: dict[str, str]) -> dict[str, str]:
    """The table's values with the environment's overrides, each with the values it names filled in."""
    raw = {name: environ.get(name.upper(), str(value)) for name, value in table.get("values", {}).items()}
    resolved: dict[str, str] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> str:
        if name in chain:
            raise SystemExit(f"values name each other in a circle: {' -> '.join(chain + (name,))}")
        if name not in resolved:
            resolved[name] = fill(raw[name], lambda inner: resolve(inner, chain + (name,)))
        return resolved[name]

    for name in raw:
        resolve(name, ())
    return resolved


def fill(text: str, value_of) -> str:
    """`text` with every `{name}` replaced by value_of(name)."""
    class Lookup(dict):
        def __missing__(self, key: str) -> str:
            return value_of(key)
    try:
        return text.format_map(Lookup())
    except KeyError as missing:  # raised by value_of for a name the table lacks
        raise SystemExit(f"{text!r} names {missing}, which is not among the table's [values]") from None


def arm_commands(table: dict, names: list[str], environ: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(name, train arguments) of each named arm, or of every arm in the table's order."""
    arms = table["arms"]
    unknown = [name for name in names if name not in arms]
    if unknown:
        raise SystemExit(f"unknown arm {unknown[0]}; valid: {' '.join(arms)}")
    values = resolved_values(table, environ)

    def value_of(name: str) -> str:
        if name not in values:
            raise KeyError(name)
        return values[name]

    commands = []
    for name in names or list(arms):
        settings = fill(arms[name], value_of)
        shared = fill(table["command"], lambda key: settings if key == "arm" else value_of(key))
        out = ["--out", f"{table['runs']}/{name}", "--record", f"{table['records']}/{name}"]
        commands.append((name, ["train", *shlex.split(shared), *out]))
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", help="the table's name in scripts/probes/arms/")
    parser.add_argument("names", nargs="*", help="arms to train (default: all, in the table's order)")
    parser.add_argument("--print", action="store_true", help="print the commands instead of running them")
    args = parser.parse_intermixed_args(argv)
    commands = arm_commands(load_table(args.probe), args.names, dict(os.environ))
    for name, arguments in commands:
        if args.print:
            print(shlex.join(["python", "-m", "saccadelib", *arguments]))
            continue
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, "-m", "saccadelib", *arguments], cwd=REPO_ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
