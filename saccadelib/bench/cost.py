"""Cost of one model configuration at one image size, measured in a fresh process.

Each measurement runs in its own Python process (``python -m saccadelib.bench.cost SPEC_JSON``) so that
peak RSS belongs to that configuration alone. It reports the RSS after the model is built (``idle``) and
the process's peak RSS, so the increase caused by the measured work is visible. Times are medians of
``repeats`` runs after one warm-up.

A spec: {"model": registry name, "config": {overrides}, "task": "identification", "side": 2528,
"batch": 1, "phase": "infer" | "train", "repeats": 3, "threads": 2}. The input is a batch of 100² canvases
read as a lazy ``side``² upsample (the paper's large images), so the image itself costs almost nothing.
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure_here(spec: dict) -> dict:
    import torch

    from .. import baselines
    from .. import data as twodigit
    from ..experiment import config_for
    from ..sampler import UpsampledSource

    torch.set_num_threads(spec.get("threads", 2))
    torch.manual_seed(0)
    name, side, batch = spec["model"], spec["side"], spec["batch"]
    task = spec.get("task", "identification")
    cfg = config_for(name, task, {"image_side": side, **spec.get("config", {})})
    model = baselines.build(name, cfg)
    params = sum(p.numel() for p in model.parameters())
    canvases = twodigit.make_two_digit(task, "test", batch, 0)
    idle = _rss_mib()

    def once():
        source = UpsampledSource(canvases["image"], side)
        if spec["phase"] == "infer":
            model.eval()
            with torch.no_grad():
                model.evaluate_batch({"image": source, "label": canvases["label"]})
        else:
            model.train()
            loss, _ = model.training_loss({"image": source, "label": canvases["label"]})
            model.zero_grad(set_to_none=True)
            loss.backward()

    once()  # warm-up
    times = []
    for _ in range(spec.get("repeats", 3)):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {**spec, "parameters": params, "median_s": seconds, "per_image_s": seconds / batch,
            "images_per_s": batch / seconds, "times_s": times, "idle_rss_mib": round(idle, 1),
            "peak_rss_mib": round(_peak_rss_mib(), 1), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def measure(spec: dict, timeout_s: float | None = None) -> dict:
    """``measure_here`` in a fresh Python process; its stdout's last line is the JSON result."""
    done = subprocess.run([sys.executable, "-m", "saccadelib.bench.cost", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"cost measurement {spec} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure_here(json.loads(sys.argv[1]))))


def tiles_report(threads: int = 2, repeats: int = 3, side: int = 2528, out=None) -> dict:
    """Issue 4's CPU cost table: the 144-tile ResNet-18 (naive, checkpointed) and our model at ``side``²,
    batch 1, inference and one training step, each in a fresh process."""
    from ..paths import results_dir
    from ..runinfo import run_metadata, write_json

    configs = [("resnet18_tiles", {"checkpoint": False}, "naive"),
               ("resnet18_tiles", {"checkpoint": True}, "checkpointed"),
               ("saccade", {}, "T=4, 32² crops")]
    rows = []
    for name, overrides, label in configs:
        for phase in ("infer", "train"):
            spec = {"model": name, "config": overrides, "side": side, "batch": 1, "phase": phase,
                    "repeats": repeats, "threads": threads}
            row = measure(spec)
            row["label"] = label
            rows.append(row)
            print(f"{name:15s} {label:15s} {phase:5s} {row['median_s']:8.3f} s  peak RSS {row['peak_rss_mib']:7.0f} MiB "
                  f"(idle {row['idle_rss_mib']:.0f})", flush=True)
    result = {"benchmark": "tile_baseline_cost", "side": side, "batch": 1, "statistic": "median",
              "note": "each row a fresh process; peak_rss_mib is the whole process's peak, idle_rss_mib its RSS "
                      "after building the model (the difference is what the measured work costs)",
              "rows": rows, **run_metadata("cpu")}
    write_json(out or results_dir() / "benchmarks" / f"tiles_{side}_cpu.json", result)
    return result
