"""Where the project keeps data, results and runs.

Paths resolve against the repository root (the folder holding ``saccadelib/``), not the caller's
working directory, so notebooks executed by papermill with another cwd find the same data.
``SACCADE_DATA`` overrides the data folder (useful when datasets live on another disk).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("SACCADE_DATA", REPO_ROOT / "data"))


def results_dir() -> Path:
    return Path(os.environ.get("SACCADE_RESULTS", REPO_ROOT / "results"))


def runs_dir() -> Path:
    """Training runs (checkpoints): large, never committed. ``SACCADE_RUNS`` overrides."""
    return Path(os.environ.get("SACCADE_RUNS", REPO_ROOT / "runs"))


@contextmanager
def atomic_path(final: Path):
    """Yield a temporary path beside ``final``; on success rename it into place.

    A killed process leaves at most a stray ``.tmp`` file, never a half-written ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(final: Path, payload: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(payload)


def write_text_atomic(final: Path, text: str) -> None:
    write_bytes_atomic(final, text.encode())


def csv_text(rows: list[dict], fields: list[str] | None = None) -> str:
    """Rows as CSV text with a header (``fields``: the columns, default the first row's keys)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields or list(rows[0]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
