"""Command line: ``python -m saccadelib <command>`` (also installed as ``saccade``)."""
from __future__ import annotations

import argparse
import logging
import sys

from ..names import MAX_PIXELS  # torch-free: the command line starts without it

MAX_PIXELS_HELP = (f"refuse images above this many pixels (default {MAX_PIXELS:,}: an 8192 × 8192 photo); "
                   "raise it for larger images you trust")


def parse_settings(pairs: list[str] | None) -> dict:
    """KEY=VALUE pairs from the command line, as strings: the configs' one override parser types them."""
    settings = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"settings are KEY=VALUE, got {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def build_parser() -> argparse.ArgumentParser:
    from . import bench, data, run  # noqa: PLC0415 (start-up: --help answers without torch)

    parser = argparse.ArgumentParser(prog="python -m saccadelib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data.add_commands(commands)
    run.add_commands(commands)
    bench.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RuntimeError, ValueError, FileNotFoundError) as err:
        # Library errors carry the fix in their message; a traceback would only hide it.
        print(f"error: {err}", file=sys.stderr)
        return 2
