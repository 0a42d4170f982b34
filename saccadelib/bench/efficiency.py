"""The efficiency benchmark: our model against the 144-tile and whole-image ResNet-18 at large image sides.

``python -m saccadelib bench [--device cpu|cuda] [--sides 2528 5056 10112]`` measures, each configuration
in its own fresh process (``cost.measure``): inference latency at batch 1 and 16 (median of ``repeats``
after a warm-up), images per second, one training step, peak memory, parameters and multiply-accumulates
per image, both model-only (a lazy upsample of the canvases in memory, as the paper's images are) and end
to end from a JPEG on disk. It writes to ``runs/efficiency/`` (``05_efficiency`` renders the committed
copy in ``results/``): ``efficiency_<tag>.csv`` and ``.json``
(every row with its spec), ``efficiency_<tag>.md`` (table and ratios), ``latency_<tag>.png`` and
``memory_<tag>.png`` (log-log against the image side), and the per-step profile of a 4000×3000 photo.

What is measured where is in ``plan``: on 2 CPU cores the 144-tile baseline costs ~7 s per image forward
and ~20-30 s per training step at 2528², so it runs there at batch 1 only; larger sides and batch 16 run
on a GPU. Memory: on a CPU ``work_mib`` = peak RSS − the RSS of the bare process (torch and this package
imported, nothing built), i.e. weights, inputs and activations; on a GPU the peak allocated memory.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..datasets import twodigit
from ..model import ModelConfig, VariationalSaccading
from ..paths import atomic_path, data_dir, results_dir, runs_dir, write_text_atomic
from ..recipes import LARGE_CROP, crop_settings
from ..runinfo import run_metadata, write_json
from ..sources import FileSource
from . import cost  # cost.measure, looked up when called (tests replace it)
from .efficiency_report import (  # noqa: F401
    MIN_TIME_S,
    accuracy_from,
    markdown,
    memory_growth,
    plot,
    ratios,  # (ratios, memory_growth: the benchmark's API)
)

SIDES = (2528, 5056, 10112)
PHOTO_SIZE = (4000, 3000)
# The paper's model size for identification: T = 4 glimpses read at 64² (0.6 GMAC in the paper's nets).
SACCADE = {"glimpses": 4, **crop_settings(LARGE_CROP)}

VARIANTS = {  # label → (registry name, config overrides)
    "saccade": ("saccade", SACCADE),
    # the paper's tile baseline three ways: all 144 tiles in one trunk call (naive, the paper's), in chunks
    # of 12 (faster and a tenth of the memory at inference), and chunks of 12 recomputed in backward
    "tiles_naive": ("resnet18_tiles", {"checkpoint": False, "chunk_tiles": 144}),
    "tiles_chunked": ("resnet18_tiles", {"checkpoint": False, "chunk_tiles": 12}),
    "tiles_checkpointed": ("resnet18_tiles", {"checkpoint": True, "chunk_tiles": 12}),
    "resnet18_whole": ("resnet18", {}),
    # what a practitioner would try first: ResNet-18 on a 224² downsample, and a CNN on our 32² proxy
    "resnet18_downsampled": ("resnet18_downsampled", {}),
    "proxy_cnn": ("proxy_cnn", {}),
}


def _case(phase: str, batch: int) -> dict:
    return {"phase": phase, "batch": batch}


ALL_CASES = [_case("infer", 1), _case("infer", 16), _case("train", 1), _case("train", 16)]


def plan(device: str, sides=SIDES, quick: bool = False) -> list[dict]:
    """The configurations to measure: a list of specs (``cost.measure_here``), each one fresh process.

    On a CPU each spec holds one case (peak RSS only grows within a process); on a GPU one process per
    (variant, side, source) runs several cases, resetting the peak counter between them.
    """
    gpu = device.startswith("cuda")
    specs: list[dict] = []

    def add(variant: str, side: int, source: str, cases: list[dict]):
        name, config = VARIANTS[variant]
        config = dict(config)
        if name == "resnet18_tiles" and quick:
            config["tile"] = 64
        base = {"variant": variant, "model": name, "config": config, "side": side, "source": source,
                "device": device, "macs": True}
        if gpu:
            specs.append({**base, "cases": cases})
        else:
            specs.extend({**base, **case} for case in cases)

    for side in sides:
        # quick (smoke) runs keep the batch-1 cases: the ratios and the growth check need only those
        add("saccade", side, "lazy", [c for c in ALL_CASES if c["batch"] == 1] if quick else ALL_CASES)
        add("saccade", side, "file", [_case("infer", 1)])
    first = sides[0]
    if gpu:
        for side in sides:
            big = side > 2 * first
            add("tiles_naive", side, "lazy",
                [_case("infer", 1), _case("infer", 16), _case("train", 1)] + ([] if side != first else [_case("train", 16)]))
            add("tiles_checkpointed", side, "lazy", [_case("train", 1)] + ([] if big else [_case("train", 16)]))
            add("resnet18_whole", side, "lazy", [_case("infer", 1), _case("train", 1)] if side == first else
                [_case("infer", 1)] + ([] if big else [_case("train", 1)]))
            add("tiles_chunked", side, "lazy", [_case("infer", 1), _case("infer", 16)])
            # these read a downsample, so their cost does not depend on the side
            add("resnet18_downsampled", side, "lazy", ALL_CASES)
            add("proxy_cnn", side, "lazy", ALL_CASES)
        add("tiles_chunked", first, "file", [_case("infer", 1)])
    else:
        add("tiles_naive", first, "lazy", [_case("infer", 1), _case("train", 1)])
        add("tiles_chunked", first, "lazy", [_case("infer", 1)])
        add("tiles_checkpointed", first, "lazy", [_case("infer", 1), _case("train", 1)])
        add("tiles_chunked", first, "file", [_case("infer", 1)])
        add("resnet18_whole", first, "lazy", [_case("infer", 1), _case("train", 1)])
        add("resnet18_downsampled", first, "lazy", ALL_CASES)
        add("proxy_cnn", first, "lazy", ALL_CASES)
    return specs


NOT_MEASURED = {
    "cpu": "On 2 CPU cores the tile and whole-image baselines run at the first side and batch 1 only: the 144-tile "
           "ResNet-18 takes 3.4-4.3 s per 2528² image forward and 12-13 s per training step (×4 at 5056², ×16 at "
           "10112²), so batch 16 or larger sides would take hours per row; the GPU run covers them. The downsampled "
           "ResNet-18 and the proxy CNN read a downsample, so their cost does not depend on the side.",
    "cuda": "The naive tile model trains at batch 16 only at the first side and the checkpointed one at batch 1 "
            "at 10112² (36,864 tiles per step otherwise); the whole-image ResNet-18 trains only up to 5056² "
            "(its first activation alone is 6.5 GB at 10112²).",
}


# ------------------------------------------------------------------------------------------ inputs

def write_test_jpeg(path: Path, side: int, task: str = "identification") -> Path:
    """A test canvas upsampled to side² and saved as a greyscale JPEG (quality 95), the file-mode input."""
    if path.exists():
        return path
    canvas = twodigit.make_two_digit(task, "test", 1, 0)["image"]
    large = F.interpolate(canvas, size=(side, side), mode="bilinear", align_corners=False)[0, 0]
    with atomic_path(path) as tmp:
        Image.fromarray((large.clamp(0, 1) * 255).round().byte().numpy()).save(tmp, format="JPEG", quality=95)
    return path


def write_test_photo(path: Path, size=PHOTO_SIZE, seed: int = 0) -> Path:
    """A synthetic 4000×3000 colour photo (smooth gradients, shapes and sensor-like noise) as a JPEG."""
    if path.exists():
        return path
    width, height = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([xx / width, yy / height, 0.5 + 0.4 * np.sin(xx / 180.0) * np.cos(yy / 230.0)], -1)
    rgb = (rgb * 255 + rng.normal(0, 4, rgb.shape)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(rgb)
    pen = ImageDraw.Draw(img)
    for _ in range(40):
        x, y, r = rng.integers(0, width), rng.integers(0, height), rng.integers(30, 300)
        pen.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    with atomic_path(path) as tmp:
        img.save(tmp, format="JPEG", quality=92)
    return path


# ------------------------------------------------------------------------------------------ photo profile

def photo_profile(path: Path, repeats: int = 5, threads: int = 2) -> dict:
    """Where the end-to-end time of one large photo goes: opening (header and integrity check), the proxy
    (reduced JPEG decode), the crops (reduced decode of what they need) and the networks; beside it a full
    decode of the same file, which a tile baseline cannot avoid."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(channels=3, n_classes=6, **SACCADE)).eval()
    rows = []
    for _ in range(repeats + 1):
        steps = {}
        tick = time.perf_counter()
        source = FileSource(path, channels=3, max_pixels=None)  # the benchmark's own file
        steps["open_and_verify"] = time.perf_counter() - tick
        tick = time.perf_counter()
        proxy = source.proxy(model.cfg.proxy_size)
        steps["proxy_decode"] = time.perf_counter() - tick
        crop_time = [0.0]
        original_crop = source.crop

        def timed_crop(*args, **kwargs):
            start = time.perf_counter()
            out = original_crop(*args, **kwargs)
            crop_time[0] += time.perf_counter() - start
            return out

        source.crop = timed_crop
        tick = time.perf_counter()
        with torch.no_grad():
            model(source, proxy=proxy)
        total = time.perf_counter() - tick
        steps["crops_decode"] = crop_time[0]
        steps["networks"] = total - crop_time[0]
        steps["end_to_end"] = sum(steps.values())
        tick = time.perf_counter()
        with Image.open(path) as img:
            img.convert("RGB").load()
        steps["full_decode_for_reference"] = time.perf_counter() - tick
        rows.append(steps)
    rows = rows[1:]  # the first pass warms caches
    median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    with Image.open(path) as img:
        size = list(img.size)
    return {"photo": str(path), "size": size, "repeats": repeats, "threads": threads,
            "median_s": median, "crop_decode_size": list(source.last_decode or ()),
            "model": {"channels": 3, **SACCADE}}


# ------------------------------------------------------------------------------------------ the run

def device_tag(device: str) -> str:
    if not device.startswith("cuda"):
        return "cpu"
    name = torch.cuda.get_device_name(torch.device(device)).lower()
    for chip in ("h200", "h100", "a100", "l40", "a10"):
        if chip in name:
            return chip
    return "gpu"


def _work_memory(row: dict) -> float | None:
    if "peak_allocated_mib" in row:
        return row["peak_allocated_mib"]
    if "base_rss_mib" in row:
        return round(row["peak_rss_mib"] - row["base_rss_mib"], 1)
    return None




def run(device: str = "cpu", sides=SIDES, threads: int = 2, repeats: int = 5, out_dir: Path | None = None,
        quick: bool = False, timeout_s: float = 1800, accuracy_file: Path | None = None, log=print) -> dict:
    """Measure every configuration of ``plan`` and write CSV, JSON, markdown and plots; returns the result.

    Rows are written after each configuration, so a stopped run keeps what it measured.
    """
    tag = device_tag(device)
    out_dir = Path(out_dir or runs_dir() / "efficiency")  # 05_efficiency renders the committed copy
    accuracy = accuracy_from(Path(accuracy_file) if accuracy_file else results_dir() / "benchmarks" / "time_to_accuracy.json")
    files = {side: write_test_jpeg(data_dir() / "bench" / f"canvas_{side}.jpg", side) for side in sides}
    rows: list[dict] = []
    started = time.perf_counter()
    for spec in plan(device, sides, quick):
        spec = {**spec, "threads": threads, "repeats": repeats, "min_time_s": MIN_TIME_S}
        if spec["source"] == "file":
            spec["file"] = str(files[spec["side"]])
        try:
            if spec["variant"] == "saccade" and "cases" not in spec and not quick:
                new = [median_of_processes([cost.measure(spec, timeout_s=timeout_s) for _ in range(3)])]
            else:
                result = cost.measure(spec, timeout_s=timeout_s)
                new = result["rows"] if "rows" in result else [result]
        except Exception as err:  # an out-of-memory or a timeout is a result too: say so in the table
            cases = spec.get("cases") or [{"phase": spec["phase"], "batch": spec["batch"]}]
            message = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
            new = [{**{k: v for k, v in spec.items() if k != "cases"}, **case, "error": message} for case in cases]
        for row in new:
            row["work_mib"] = _work_memory(row)
            rows.append(row)
            log(_row_line(row))
        _write(out_dir, tag, rows, device, quick, started, accuracy=accuracy)
    photo = photo_profile(write_test_photo(data_dir() / "bench" / "photo_4000x3000.jpg"), repeats, threads) \
        if not quick else None
    return _write(out_dir, tag, rows, device, quick, started, photo, accuracy)


def median_of_processes(runs: list[dict]) -> dict:
    """One row from the same case measured in several processes. Our model's peak RSS differs by ±15 MiB
    between identical processes (the allocator), as much as the growth the benchmark checks, and its time
    by up to a third (a shared machine): the row is the process of median peak RSS, carrying the median of
    all the processes' times, and both lists."""
    by_rss = sorted(runs, key=lambda r: r["peak_rss_mib"])
    row = dict(by_rss[(len(runs) - 1) // 2])
    times = [r["median_s"] for r in runs]
    seconds = statistics.median(times)
    row.update(median_s=seconds, per_image_s=seconds / row["batch"], images_per_s=row["batch"] / seconds,
               median_s_runs=times, peak_rss_runs_mib=[r["peak_rss_mib"] for r in by_rss])
    return row


def _row_line(row: dict) -> str:
    head = f"{row['variant']:19s} {row['source']:5s} {row['side']:6d} {row['phase']:5s} b{row['batch']:<3d}"
    if "error" in row:
        return f"{head} failed: {row['error']}"
    return f"{head} {row['median_s'] * 1000:10.1f} ms  {row['images_per_s']:9.2f} img/s  memory {row['work_mib']:8.1f} MiB"


CSV_FIELDS = ["variant", "model", "source", "side", "phase", "batch", "device", "threads", "dtype", "median_s",
              "per_image_s", "images_per_s", "work_mib", "peak_rss_mib", "base_rss_mib", "idle_rss_mib",
              "peak_allocated_mib", "parameters", "macs_per_image", "repeats", "error", "config"]


def _write(out_dir: Path, tag: str, rows: list[dict], device: str, quick: bool, started: float,
           photo: dict | None = None, accuracy: dict | None = None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "config": json.dumps(row.get("config", {}), sort_keys=True)})
    write_text_atomic(out_dir / f"efficiency_{tag}.csv", buffer.getvalue())
    result = {"benchmark": "efficiency", "device_tag": tag, "quick": quick, "statistic": "median",
              "not_measured": NOT_MEASURED["cuda" if device.startswith("cuda") else "cpu"],
              "wall_s": round(time.perf_counter() - started, 1), "rows": rows, "photo": photo,
              "accuracy": accuracy or {}, **run_metadata(device)}
    write_json(out_dir / f"efficiency_{tag}.json", result)
    result["out_dir"] = str(out_dir)
    write_text_atomic(out_dir / f"efficiency_{tag}.md", markdown(result))
    if rows:
        plot(rows, out_dir, tag)
    return result
