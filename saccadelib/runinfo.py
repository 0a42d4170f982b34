"""What every saved result carries: parameters' context (commit, versions, device, threads, time)."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

from .paths import REPO_ROOT, write_text_atomic


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
