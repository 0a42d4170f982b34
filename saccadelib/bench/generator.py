"""Throughput of the two-digit generator on one core (target ≥ 5,000 canvases of 100² per second)."""
from __future__ import annotations

import statistics
import time

import torch

from ..datasets import twodigit as data
from ..paths import results_dir
from ..runinfo import run_metadata, write_json


def measure(task: str, n: int, repeats: int, canvas: int = 100) -> dict:
    data.generate(task, "train", 256, 0, canvas)  # warm-up: loads MNIST, touches the allocator
    rates = {"uint8": [], "float32_public": []}
    calls = max(1, 20_000 // n)  # each timing covers ~20k canvases, so small batches are not timer noise
    for r in range(repeats):
        start = time.perf_counter()
        for c in range(calls):
            data.generate(task, "train", n, (1, r, c), canvas)
        rates["uint8"].append(n * calls / (time.perf_counter() - start))
        start = time.perf_counter()
        for c in range(calls):
            data.make_two_digit(task, "train", n, r * calls + c, canvas)
        rates["float32_public"].append(n * calls / (time.perf_counter() - start))
    return {f"{kind}_canvases_per_s": round(statistics.median(values)) for kind, values in rates.items()}


def run(n: int = 5000, repeats: int = 5, threads: int = 1, out=None) -> dict:
    torch.set_num_threads(threads)
    rows = []
    for task in data.TASKS:
        for batch in (128, n):
            rows.append({"task": task, "batch": batch, **measure(task, batch, repeats)})
    result = {"benchmark": "two_digit_generator", "canvas": 100, "repeats": repeats, "statistic": "median",
              "canvases_per_timing": 20_000,
              "target_canvases_per_s": 5000, "rows": rows, **run_metadata("cpu")}
    write_json(out or results_dir() / "benchmarks" / "generator.json", result)
    return result
