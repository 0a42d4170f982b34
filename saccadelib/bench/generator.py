"""Throughput of the two-digit generator on one core (target ≥ 5,000 canvases of 100² per second)."""
from __future__ import annotations

import statistics
import time

import torch

from .. import data
from ..paths import results_dir
from ..runinfo import run_metadata, write_json


def measure(task: str, n: int, repeats: int, canvas: int = 100) -> dict:
    data.generate(task, "train", 256, 0, canvas)  # warm-up: loads MNIST, touches the allocator
    rates = {"uint8": [], "float32_public": []}
    for r in range(repeats):
        start = time.perf_counter()
        data.generate(task, "train", n, (1, r), canvas)
        rates["uint8"].append(n / (time.perf_counter() - start))
        start = time.perf_counter()
        data.make_two_digit(task, "train", n, r, canvas)
        rates["float32_public"].append(n / (time.perf_counter() - start))
    return {f"{kind}_canvases_per_s": round(statistics.median(values)) for kind, values in rates.items()}


def run(n: int = 5000, repeats: int = 5, threads: int = 1, out=None) -> dict:
    torch.set_num_threads(threads)
    rows = []
    for task in data.TASKS:
        for batch in (128, n):
            rows.append({"task": task, "batch": batch, **measure(task, batch, repeats)})
    result = {"benchmark": "two_digit_generator", "canvas": 100, "repeats": repeats, "statistic": "median",
              "target_canvases_per_s": 5000, "rows": rows, **run_metadata("cpu")}
    write_json(out or results_dir() / "benchmarks" / "generator.json", result)
    return result
