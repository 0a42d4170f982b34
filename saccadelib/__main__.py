"""``python -m saccadelib <command>``: the command line lives in :mod:`saccadelib.cli`."""
import sys

from .cli import MAX_PIXELS, main

__all__ = ["MAX_PIXELS", "main"]

if __name__ == "__main__":
    sys.exit(main())
