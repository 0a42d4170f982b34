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

from ..paths import atomic_path
from ..recipes import LARGE_CROP, crop_settings

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
TILE_VARIANTS = ("tiles_naive", "tiles_chunked", "tiles_checkpointed")
# Each baseline's accuracy on the same task (identification at 2528²) at the same training budget as ours,
# from the time-to-accuracy benchmark (results/benchmarks/time_to_accuracy.json): variant → its case.
ACCURACY_CASES = {"saccade": "identification_2528", "proxy_cnn": "identification_2528_proxy_cnn",
                  "resnet18_downsampled": "identification_2528_resnet18_downsampled"}


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
    import torch.nn.functional as F
    from PIL import Image

    from .. import data as twodigit

    if path.exists():
        return path
    canvas = twodigit.make_two_digit(task, "test", 1, 0)["image"]
    large = F.interpolate(canvas, size=(side, side), mode="bilinear", align_corners=False)[0, 0]
    with atomic_path(path) as tmp:
        Image.fromarray((large.clamp(0, 1) * 255).round().byte().numpy()).save(tmp, format="JPEG", quality=95)
    return path


def write_test_photo(path: Path, size=PHOTO_SIZE, seed: int = 0) -> Path:
    """A synthetic 4000×3000 colour photo (smooth gradients, shapes and sensor-like noise) as a JPEG."""
    import numpy as np
    from PIL import Image, ImageDraw

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
    import torch
    from PIL import Image

    from ..model import ModelConfig, VariationalSaccading
    from ..file_source import FileSource

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
    import torch

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


MIN_TIME_S = 2.0  # a configuration is timed for at least this long: a few-ms case gets hundreds of runs


def run(device: str = "cpu", sides=SIDES, threads: int = 2, repeats: int = 5, out_dir: Path | None = None,
        quick: bool = False, timeout_s: float = 1800, accuracy_file: Path | None = None, log=print) -> dict:
    """Measure every configuration of ``plan`` and write CSV, JSON, markdown and plots; returns the result.

    Rows are written after each configuration, so a stopped run keeps what it measured.
    """
    from ..paths import data_dir, results_dir, runs_dir
    from .cost import measure

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
                new = [median_of_processes([measure(spec, timeout_s=timeout_s) for _ in range(3)])]
            else:
                result = measure(spec, timeout_s=timeout_s)
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
    from ..paths import write_text_atomic
    from ..runinfo import run_metadata, write_json

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


# ------------------------------------------------------------------------------------------ reports

def _find(rows, variant, side, phase, batch, source="lazy"):
    for row in rows:
        if (row["variant"], row["side"], row["phase"], row["batch"], row["source"]) == (variant, side, phase, batch, source) \
                and "error" not in row:
            return row
    return None


def _peak_mib(row: dict) -> float | None:
    return row.get("peak_allocated_mib") or row.get("peak_rss_mib")


def ratios(rows: list[dict]) -> list[dict]:
    """Baseline ÷ model for time, work memory and the whole process's peak memory, at each side and case
    both were measured in. ``tiles (strongest)`` is, per case, the fastest of the tile settings for time
    and the leanest for memory: the headline compares against it, not against the naive one."""
    out = []
    for row in rows:
        if row["variant"] == "saccade" or "error" in row:
            continue
        ours = _find(rows, "saccade", row["side"], row["phase"], row["batch"], row["source"])
        if ours is not None:
            out.append(_ratio(row["variant"], row, row, ours))
    cases = {(r["side"], r["phase"], r["batch"], r["source"]) for r in rows if r["variant"] in TILE_VARIANTS}
    for side, phase, batch, source in sorted(cases):
        tiles = [t for t in (_find(rows, v, side, phase, batch, source) for v in TILE_VARIANTS) if t]
        ours = _find(rows, "saccade", side, phase, batch, source)
        if tiles and ours:
            fastest = min(tiles, key=lambda r: r["median_s"])
            leanest = min(tiles, key=lambda r: r.get("work_mib") or float("inf"))
            out.append(_ratio("tiles (strongest)", fastest, leanest, ours))
    return out


def _ratio(label: str, timed: dict, weighed: dict, ours: dict) -> dict:
    work = weighed["work_mib"] / ours["work_mib"] if ours.get("work_mib") and weighed.get("work_mib") else None
    peak = _peak_mib(weighed) / _peak_mib(ours) if _peak_mib(ours) and _peak_mib(weighed) else None
    return {"baseline": label, "source": timed["source"], "side": timed["side"], "phase": timed["phase"],
            "batch": timed["batch"], "time_ratio": timed["median_s"] / ours["median_s"], "memory_ratio": work,
            "peak_ratio": peak, "timed_variant": timed["variant"], "weighed_variant": weighed["variant"]}


def memory_growth(rows: list[dict]) -> list[dict]:
    """Our model's memory at each side relative to the first side (target: ≤ +10% up to 10112²)."""
    out = []
    for source in ("lazy", "file"):
        for phase, batch in (("infer", 1), ("infer", 16), ("train", 16)):
            found = [r for r in rows if r["variant"] == "saccade" and r["source"] == source and r["phase"] == phase
                     and r["batch"] == batch and "error" not in r and r.get("work_mib")]
            found.sort(key=lambda r: r["side"])
            if len(found) >= 2:
                out.append({"source": source, "phase": phase, "batch": batch,
                            "sides": [r["side"] for r in found], "work_mib": [r["work_mib"] for r in found],
                            "growth": found[-1]["work_mib"] / found[0]["work_mib"] - 1,
                            "peak_growth": (found[-1].get("peak_allocated_mib") or found[-1]["peak_rss_mib"])
                            / (found[0].get("peak_allocated_mib") or found[0]["peak_rss_mib"]) - 1})
    return out


def markdown(result: dict) -> str:
    rows = result["rows"]
    gpu = result["device"].startswith("cuda")
    memory_label = "peak allocated MiB" if gpu else "work MiB (peak RSS − bare process)"
    lines = [f"# Efficiency on {result['device_name']} ({result['device_tag']})", "",
             f"Commit {result['git_commit']}, torch {result['torch']}, "
             f"{'' if gpu else str(rows[0]['threads']) + ' threads, ' if rows else ''}float32, median of "
             f"{rows[0]['repeats'] if rows else '?'} runs after a warm-up, or of as many as fill "
             f"{MIN_TIME_S:g} s (fast cases), each configuration in a fresh process"
             f"{'' if gpu or result.get('quick') else ' (ours in three, its row the median of their times and peaks)'}. "
             f"Written by `python -m saccadelib bench --device {result['device']}` in {result['wall_s']:.0f} s.", "",
             f"| variant | source | side | phase | batch | median ms | images/s | {memory_label} | "
             f"whole-process peak MiB | GMAC/image | params M |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['source']} | {r['side']} | {r['phase']} | {r['batch']} | "
                         f"failed: {r['error']} | | | | | |")
            continue
        macs = f"{r['macs_per_image'] / 1e9:.3g}" if r.get("macs_per_image") else ""
        lines.append(f"| {r['variant']} | {r['source']} | {r['side']} | {r['phase']} | {r['batch']} | "
                     f"{r['median_s'] * 1000:.1f} | {r['images_per_s']:.3g} | {r['work_mib']:.0f} | "
                     f"{_peak_mib(r):.0f} | {macs} | {r['parameters'] / 1e6:.2f} |")
    lines += ["", "## Ratios (baseline ÷ our model, same run)", "",
              "`tiles (strongest)`: per case the fastest tile setting for time and the leanest for memory. Work "
              "memory leaves out what every PyTorch process holds; the whole-process peak includes it.", "",
              "| baseline | source | side | phase | batch | time × | work memory × | whole-process peak × |",
              "|---|---|---|---|---|---|---|---|"]
    for q in ratios(rows):
        mem = f"{q['memory_ratio']:.1f}" if q["memory_ratio"] else ""
        peak = f"{q['peak_ratio']:.2f}" if q["peak_ratio"] else ""
        label = q["baseline"]
        if label == "tiles (strongest)":
            label += f" ({q['timed_variant']}; {q['weighed_variant']})"
        lines.append(f"| {label} | {q['source']} | {q['side']} | {q['phase']} | {q['batch']} | "
                     f"{q['time_ratio']:.3g} | {mem} | {peak} |")
    lines += _accuracy_lines(result)
    growth = memory_growth(rows)
    if growth:
        lines += ["", "## Our model's memory against the image side", "",
                  "| source | phase | batch | sides | memory MiB | growth of that | growth of the whole process's peak |",
                  "|---|---|---|---|---|---|---|"]
        for g in growth:
            lines.append(f"| {g['source']} | {g['phase']} | {g['batch']} | {', '.join(map(str, g['sides']))} | "
                         f"{', '.join(f'{m:.0f}' for m in g['work_mib'])} | {g['growth']:+.1%} | {g['peak_growth']:+.1%} |")
    if result.get("photo"):
        p = result["photo"]
        lines += ["", f"## One {p['size'][0]}×{p['size'][1]} JPEG photo, end to end on the CPU "
                      f"({p['threads']} threads, median of {p['repeats']})", "",
                  "| step | ms | share of end to end |", "|---|---|---|"]
        total = p["median_s"]["end_to_end"]
        for k, v in p["median_s"].items():
            share = f"{v / total:.0%}" if k not in ("end_to_end", "full_decode_for_reference") else ""
            lines.append(f"| {k.replace('_', ' ')} | {v * 1000:.1f} | {share} |")
        lines += ["", f"The crops were decoded at {p['crop_decode_size']} (JPEG DCT-domain reduction)."]
    lines += ["", "Not measured: " + result["not_measured"], ""]
    if result.get("memory_note"):
        lines += ["Memory note: " + result["memory_note"], ""]
    return "\n".join(lines)


def _accuracy_lines(result: dict) -> list[str]:
    """Cost and accuracy side by side for the models trained on the same task at the same budget."""
    accuracy = result.get("accuracy") or {}
    if not accuracy:
        return []
    rows = result["rows"]
    lines = ["", "## Cost beside accuracy (identification at 2528², the same training budget)", "",
             "| model | test accuracy | trained minutes | inference ms per image (batch 1) | "
             "training images/s (batch 16) | whole-process peak MiB (inference) |", "|---|---|---|---|---|---|"]
    side = min(r["side"] for r in rows)
    for variant, acc in accuracy.items():
        infer = _find(rows, variant, side, "infer", 1)
        train = _find(rows, variant, side, "train", 16)
        cells = [variant, f"{100 * acc['test_accuracy']:.1f}%", f"{acc['minutes']:.0f}",
                 f"{infer['median_s'] * 1000:.1f}" if infer else "",
                 f"{train['images_per_s']:.0f}" if train else "",
                 f"{_peak_mib(infer):.0f}" if infer else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The tile and full-side ResNet-18 were not trained at this budget: on 2 CPU cores a 144-tile "
                  "training step takes 12-13 s, so 30 minutes are 150 steps."]
    return lines


def accuracy_from(path: Path) -> dict:
    """Variant → its time-to-accuracy row (mean over seeds) for the variants in ACCURACY_CASES."""
    import statistics

    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["rows"]
    out = {}
    for variant, case in ACCURACY_CASES.items():
        found = [r for r in rows if r["case"] == case]
        if found:
            out[variant] = {"case": case, "seeds": [r["seed"] for r in found],
                            "test_accuracy": statistics.mean(r["test_accuracy"] for r in found),
                            "minutes": statistics.mean(r["minutes"] for r in found)}
    return out


def plot(rows: list[dict], out_dir: Path, tag: str) -> None:
    """Latency and memory against the image side, log-log, one line per (variant, source, case)."""
    import matplotlib.pyplot as plt  # the active backend (a notebook's inline one stays in place)

    good = [r for r in rows if "error" not in r]
    keys = sorted({f"{r['variant']} {r['source']} b{r['batch']}" for r in good})
    colour = {key: plt.get_cmap("tab20")(i % 20) for i, key in enumerate(keys)}  # one colour per line, both panels
    for metric, label, name in (("median_s", "seconds per call", "latency"),
                                ("work_mib", "memory (MiB)", "memory")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, phase in zip(axes, ("infer", "train")):
            lines = {}
            for r in good:
                if r["phase"] == phase and r.get(metric):
                    lines.setdefault(f"{r['variant']} {r['source']} b{r['batch']}", []).append((r["side"], r[metric]))
            for key, points in sorted(lines.items()):
                points.sort()
                ax.plot(*zip(*points), marker="o", label=key, color=colour[key],
                        linestyle="-" if key.startswith("saccade") else "--")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("image side (px)")
            ax.set_ylabel(label)
            ax.set_title(f"{'inference' if phase == 'infer' else 'one training step'} ({tag})")
            ax.grid(True, which="both", alpha=0.3)
            if lines:
                ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(out_dir / f"{name}_{tag}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
