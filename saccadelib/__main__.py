"""``python -m saccadelib <command>``: the command line lives in :mod:`saccadelib.cli`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
