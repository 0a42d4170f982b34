"""Cost of one model configuration at one image size, measured in a fresh process.

Each measurement runs in its own Python process (``python -m saccadelib.bench.cost SPEC_JSON``) so that
its memory belongs to that configuration alone. Times are medians of ``repeats`` runs after ``warmup``
runs, and of more where those took less than ``min_time_s`` together (a 5 ms operation timed 5 times is
too noisy to quote as a ratio; at most ``MAX_REPEATS``); on a GPU they are CUDA-event times (the event
after the work is waited for).

A spec::

    {"model": registry name, "config": {overrides}, "task": "identification", "side": 2528,
     "source": "lazy" | "tensor" | "file", "file": PATH (source "file"),
     "device": "cpu" | "cuda", "threads": 2, "repeats": 5, "min_time_s": 0, "warmup": 1, "macs": false,
     "phase": "infer" | "train", "batch": 1}            # one case, or
     "cases": [{"phase": ..., "batch": ...}, ...]       # several, one after the other

Sources: ``lazy`` = a batch of 100² canvases read as a lazy ``side``² upsample (the paper's large
images: the image itself costs almost nothing); ``tensor`` = the ``side``² images materialized in
memory first; ``file`` = end to end from an image file on disk (batch 1): our glimpse models read it
through ``FileSource`` (reduced JPEG decodes for the proxy and the crops), the baselines decode it in
full and then run on the tensor, as their users would.

Memory: on a CPU, ``idle_rss_mib`` (after building the model and its input) and the process's
``peak_rss_mib``; peak RSS only grows, so give a CPU process one case. On a GPU, each case resets the
peak counter after its warm-up (cuDNN's autotuner allocates large workspaces there) and reports
``peak_allocated_mib`` (``torch.cuda.max_memory_allocated`` over the timed runs).
A training step is forward, backward and an Adam step.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ..datasets import twodigit
from ..registry import GLIMPSE_MODELS, build, config_for
from ..sources import FileSource, TensorSource, UpsampledSource
from ..tasks import n_classes

MAX_REPEATS = 1000


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mib() -> float:
    return _status_mib("VmRSS")


def _peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: a child started by vfork/exec
    inherits its parent's high-water mark there, so a large parent would inflate every measurement."""
    return _status_mib("VmHWM")


def _inputs(spec: dict, model_name: str, cfg, batch: int, device):
    """A function returning the model's ``images`` input (timed with the work), and the labels."""
    task, side, source = spec.get("task", "identification"), spec["side"], spec.get("source", "lazy")
    if source == "file":  # any task's image file (a Megapixel MNIST PNG, a photo): the label is not scored
        if batch != 1:
            raise ValueError("the file source reads one image: use batch 1")
        path, label = spec["file"], torch.zeros(1, dtype=torch.int64, device=device)
        if model_name in GLIMPSE_MODELS:
            return (lambda: FileSource(path, channels=cfg.channels, max_pixels=None)), label  # our own file
        # what a baseline does with a photo: decode it whole, then run on the tensor
        return (lambda: TensorSource(FileSource(path, channels=cfg.channels, max_pixels=None).decode().to(device))), label
    canvases = twodigit.make_two_digit(task, "test", batch, 0)
    label = canvases["label"].to(device)
    if source == "lazy":
        base = canvases["image"].to(device)
        return (lambda: UpsampledSource(base, side)), label
    if source == "tensor":
        large = F.interpolate(canvases["image"].to(device), size=(side, side), mode="bilinear", align_corners=False)
        return (lambda: TensorSource(large)), label
    raise ValueError(f"unknown source {source!r}; valid: lazy, tensor, file")


def _count_macs(model, make_input, label) -> float:
    """Multiply-accumulates of one forward pass (torch's FLOP counter: convolutions and matrix products)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.evaluate_batch({"image": make_input(), "label": label})
    return counter.get_total_flops() / 2


def _timed_step(model, optimizer, phase: str, make_input, label, device):
    """A function that runs one inference or training step and returns its seconds (CUDA events on a GPU)."""
    if phase not in ("infer", "train"):
        raise ValueError(f"unknown phase {phase!r}; valid: infer, train")

    def once():
        if phase == "infer":
            model.eval()
            with torch.no_grad():
                model.evaluate_batch({"image": make_input(), "label": label})
        else:
            model.train()
            loss, _ = model.training_loss({"image": make_input(), "label": label})
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def timed() -> float:
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            once()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000
        tick = time.perf_counter()
        once()
        return time.perf_counter() - tick

    return timed


def measure_here(spec: dict) -> dict:
    base_rss = _rss_mib()  # torch and this package imported, nothing built: the bare process
    device = torch.device(spec.get("device", "cpu"))
    torch.set_num_threads(spec.get("threads", 2))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    name = spec["model"]
    cfg = config_for(name, n_classes(spec.get("task", "identification")), spec.get("config", {}))
    model = build(name, cfg).to(device)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    cases = spec.get("cases") or [{"phase": spec["phase"], "batch": spec["batch"]}]
    repeats, warmup = spec.get("repeats", 5), spec.get("warmup", 1)

    rows = []
    for case in cases:
        make_input, label = _inputs(spec, name, cfg, case["batch"], device)
        macs = None
        if spec.get("macs") and case["phase"] == "infer" and case["batch"] == 1:  # per image: once is enough
            macs = _count_macs(model, make_input, label) / case["batch"]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        idle = _rss_mib()
        held = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None

        timed = _timed_step(model, optimizer, case["phase"], make_input, label, device)

        for _ in range(warmup):
            timed()
        if device.type == "cuda":
            # cuDNN's autotuner (benchmark mode) tries algorithms with large workspaces in the warm-up:
            # the peak that matters is the steady state's.
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        times = [timed() for _ in range(repeats)]
        while sum(times) < spec.get("min_time_s", 0.0) and len(times) < MAX_REPEATS:
            times.append(timed())
        seconds = statistics.median(times)
        row = {**{k: v for k, v in spec.items() if k not in ("cases",)}, **case, "parameters": params,
               "median_s": seconds, "per_image_s": seconds / case["batch"], "images_per_s": case["batch"] / seconds,
               "timed_runs": len(times), "quartiles_s": statistics.quantiles(times, n=4) if len(times) > 1 else times * 3,
               "macs_per_image": macs, "base_rss_mib": round(base_rss, 1), "idle_rss_mib": round(idle, 1),
               "peak_rss_mib": round(_peak_rss_mib(), 1), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "dtype": "float32"}
        if device.type == "cuda":
            row["held_mib"] = round(held, 1)
            row["peak_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
            row["device_name"] = torch.cuda.get_device_name(device)
        rows.append(row)
    return rows[0] if "cases" not in spec else {"rows": rows}


def measure(spec: dict, timeout_s: float | None = None) -> dict:
    """``measure_here`` in a fresh Python process; its stdout's last line is the JSON result."""
    done = subprocess.run([sys.executable, "-m", "saccadelib.bench.cost", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"cost measurement {spec} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure_here(json.loads(sys.argv[1]))))
