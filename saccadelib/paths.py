"""Where the project keeps data, results and runs.

Paths resolve against the repository root (the folder holding ``saccadelib/``), not the caller's
working directory, so notebooks executed by papermill with another cwd find the same data.
``SACCADE_DATA`` overrides the data folder (useful when datasets live on another disk).
"""
from __future__ import annotations

import csv
import io
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
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields or list(rows[0]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_csv_rows(path: Path, columns: tuple[str, ...], error=ValueError) -> list[dict]:
    """The rows of a CSV with a header row naming at least ``columns`` (a byte-order mark, as spreadsheet
    programs write, is read past). A row short of one of them is refused with its line number; ``error``
    is the exception type raised (with a one-line message naming the file)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        header = reader.fieldnames or []
    if not set(columns) <= set(header):
        named = " and ".join([", ".join(columns[:-1]), columns[-1]] if len(columns) > 1 else list(columns))
        raise error(f"{path} must be a CSV with a header row naming the columns {named}")
    for line, row in enumerate(rows, start=2):
        missing = [name for name in header if row.get(name) is None]
        if missing:
            raise error(f"{path} line {line}: no {missing[0]} column on this row (it has "
                        f"{sum(v is not None for k, v in row.items() if k is not None)} of the header's {len(header)}): "
                        "complete the row or remove it")
    return rows


class RunLockedError(RuntimeError):
    """A run folder another process is training into."""


class RunLock:
    """Held while a process trains into a run folder (``with RunLock(folder): ...``): a second process that
    tries to train into it is refused, instead of both writing their checkpoints, config and history into
    one folder. An advisory lock on ``folder/.lock`` (fcntl), let go when the process ends however it ends."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.handle = None

    def __enter__(self) -> "RunLock":
        import fcntl  # noqa: PLC0415 (POSIX only: paths stays importable where fcntl is missing)

        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"{self.folder} is a file, not a run folder: give --out the path of a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.folder / ".lock", "w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            self.handle = None
            raise RunLockedError(f"another process is training into {self.folder}: wait for it to finish, or "
                                 "give this run another --out folder") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file lets go of its lock
            self.handle = None


def is_locked(folder: str | Path) -> bool:
    """Whether a process holds ``RunLock(folder)`` now (a folder never trained into is not: nothing is made)."""
    if not (Path(folder) / ".lock").exists():
        return False
    try:
        with RunLock(folder):
            return False
    except RunLockedError:
        return True
