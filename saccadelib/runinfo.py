"""What every saved result carries: parameters' context (commit, versions, device, threads, time); a
training run's history table, and the record of a finished run that a repository commits."""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import shlex
import shutil
import subprocess
from pathlib import Path

import torch

from .paths import REPO_ROOT, atomic_path, write_text_atomic


def git_commit() -> str:
    """HEAD's hash, with ``+dirty`` when tracked files differ from it (an honest label for the result).
    Rendered results (``results/``) do not count: the runner renders one experiment after another into
    the tree whose commit it stamps, and a rendered folder is output, not code.

    ``SACCADE_GIT_COMMIT`` overrides it, for copies of the tree whose .git is not the code's (a working
    tree copied to another machine)."""
    if os.environ.get("SACCADE_GIT_COMMIT"):
        return os.environ["SACCADE_GIT_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_description(device: str | torch.device = "cpu") -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {cpu_model()} ({os.cpu_count()} logical cores)"


def run_metadata(device: str | torch.device = "cpu") -> dict:
    return {
        "git_commit": git_commit(),
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": device_description(device),
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
    }


def write_json(path: Path, payload: dict) -> None:
    write_text_atomic(Path(path), json.dumps(payload, indent=2, sort_keys=False) + "\n")


def write_history(out_dir: Path, history: list[dict]) -> None:
    flat = [{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in row.items()} for row in history]
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for row in flat for k in row))  # a resumed older run may lack a column
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(flat)
    write_text_atomic(out_dir / "history.csv", buffer.getvalue())


def record_run(run_dir: str | Path, record_dir: str | Path, command: list[str]) -> Path:
    """Copy a finished run's small outputs (history, metrics, config) to ``record_dir`` with the command
    that produced them, so the numbers there can be regenerated."""
    run_dir, record_dir = Path(run_dir), Path(record_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} has no metrics.json: the run has not finished")
    record_dir.mkdir(parents=True, exist_ok=True)
    for name in ("history.csv", "metrics.json", "config.json"):
        with atomic_path(record_dir / name) as tmp:
            shutil.copyfile(run_dir / name, tmp)
    write_text_atomic(record_dir / "command.txt", "# from the repository root; rerunning resumes or repeats the run\n"
                      + shlex.join(command) + "\n")
    return record_dir
