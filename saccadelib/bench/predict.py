"""Cost of ``predict`` on large image files: where the time goes and how much memory it takes, by file size.

``python -m saccadelib bench-predict [--threads 2] [--repeats 5]`` writes synthetic colour photos (smooth
gradients, shapes and sensor-like noise: ``efficiency.write_test_photo``) as a 2000², a 4000×3000 and an
8000² JPEG and a 4000×3000 PNG under ``data/bench/``, and measures ``saccadelib.predict`` on each in its own
fresh process, so that each file's peak memory is its own. Per file it reports the median over ``repeats``
calls (after one warm-up call) of:

- ``open``: reading the header and checking the file's integrity (``FileSource``'s constructor);
- ``decode``: PIL decoding pixels (JPEG: at the reduction the proxy or the crops need; PNG: in full);
- ``proxy``: resizing the decode to the proxy;
- ``crops``: reading each glimpse's window from the decode and sampling it;
- ``networks``: everything else in the forward (proxy encoder, recurrent core, posterior, classifier);
- ``end_to_end``: the whole ``predict`` call, and a full decode of the file for reference;

and memory: the process's peak RSS (VmHWM) over the calls minus its RSS before the first call (torch and
the package imported, the model built): what reading and classifying the image took. The model has the
paper's identification size (T = 4 glimpses read at 64²) with 3 channels and fixed random weights: its
cost does not depend on what it learnt, but the size of its windows sets how finely a JPEG must be
decoded for the crops. So each file is measured with ``wide`` windows (0.6 of the side, the model's
initial glance; the crops share the proxy's 1/8 decode) and ``narrow`` ones (0.05 of the side, as on
Megapixel MNIST, where a 64² crop needs a finer decode). Results go to
``results/benchmarks/predict.{json,md}``.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from .. import inference
from ..config import apply_overrides
from ..model import ModelConfig, VariationalSaccading
from ..paths import atomic_path, data_dir, results_dir, write_text_atomic
from ..runinfo import run_metadata, write_json
from ..sources import FileSource
from .cost import _peak_rss_mib, _rss_mib
from .efficiency import SACCADE, write_test_photo

FILES = (("jpeg", (2000, 2000)), ("jpeg", (4000, 3000)), ("jpeg", (8000, 8000)), ("png", (4000, 3000)))
STAGES = ("open", "decode", "proxy", "crops", "networks", "end_to_end")
WINDOWS = {"wide": {"init_scale": 0.6},
           "narrow": {"init_scale": 0.05, "window.min_scale": 0.03, "window.max_scale": 0.1}}


def write_photo(folder: Path, kind: str, size: tuple[int, int]) -> Path:
    """The benchmark's photo of ``size`` as ``kind`` (jpeg or png), written once (kept between runs)."""
    jpeg = write_test_photo(folder / f"photo_{size[0]}x{size[1]}.jpg", size)
    if kind == "jpeg":
        return jpeg
    path = folder / f"photo_{size[0]}x{size[1]}.png"
    if not path.exists():
        with Image.open(jpeg) as img, atomic_path(path) as tmp:
            img.save(tmp, format="PNG")
    return path


class _StageClock:
    """Seconds spent in each stage of ``FileSource`` while ``predict`` runs (the methods wrapped in place)."""

    def __init__(self):
        self.seconds = dict.fromkeys(("open", "decode", "proxy", "crops"), 0.0)
        self.stage = None
        for method, stage in (("__init__", "open"), ("_decoded", "decode"), ("proxy", "proxy"), ("crop", "crops")):
            setattr(FileSource, method, self._timed(getattr(FileSource, method), stage))

    def _timed(self, method, stage):
        clock = self

        def timed(*args, **kwargs):
            outer, clock.stage = clock.stage, stage
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                clock.seconds[stage] += spent
                if outer is not None and stage == "decode":  # a decode inside the proxy or crops is its own stage
                    clock.seconds[outer] -= spent
                clock.stage = outer
        return timed

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.seconds, 0.0)


def measure_here(path: str, windows: str, repeats: int, threads: int) -> dict:
    """One file's stage times and memory, in this process (call through ``measure``: a fresh process)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = VariationalSaccading(apply_overrides(ModelConfig(channels=3, n_classes=10, **SACCADE), WINDOWS[windows])).eval()
    clock = _StageClock()
    base_rss = _rss_mib()
    rows = []
    for _ in range(repeats + 1):
        clock.reset()
        start = time.perf_counter()
        result = inference.predict(path, model)
        row = {"end_to_end": time.perf_counter() - start, **clock.seconds}
        row["networks"] = row["end_to_end"] - sum(clock.seconds.values())
        rows.append(row)
    peak_rss = _peak_rss_mib()
    start = time.perf_counter()
    with Image.open(path) as img:
        img.convert("RGB").load()
    full_decode = time.perf_counter() - start
    rows = rows[1:]  # the first call warms caches and allocators
    return {"median_s": {k: statistics.median(r[k] for r in rows) for k in STAGES},
            "full_decode_for_reference_s": full_decode, "work_mib": round(peak_rss - base_rss, 1),
            "peak_rss_mib": round(peak_rss, 1), "base_rss_mib": round(base_rss, 1),
            "boxes": [w["box"] for w in result["windows"]]}


def measure(path: Path, windows: str, repeats: int, threads: int, timeout_s: float = 900) -> dict:
    """``measure_here`` in a fresh Python process."""
    done = subprocess.run([sys.executable, "-m", "saccadelib.bench.predict", str(path), windows, str(repeats), str(threads)],
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(threads: int = 2, repeats: int = 5, out_dir: Path | None = None, log=print) -> dict:
    """Measure every file of ``FILES`` and write ``predict.json`` and ``predict.md``; returns the result."""
    out_dir = Path(out_dir or results_dir() / "benchmarks")
    started = time.perf_counter()
    rows = []
    for windows in WINDOWS:
        for kind, size in FILES:
            path = write_photo(data_dir() / "bench", kind, size)
            row = {"windows": windows, "file": path.name, "format": kind.upper(), "width": size[0], "height": size[1],
                   "megapixels": round(size[0] * size[1] / 1e6, 1), "file_mib": round(path.stat().st_size / 2**20, 1),
                   **measure(path, windows, repeats, threads)}
            rows.append(row)
            log(_line(row))
    result = {"rows": rows, "threads": threads, "repeats": repeats, "windows": WINDOWS,
              "model": {"channels": 3, "n_classes": 10, **SACCADE},
              "wall_s": round(time.perf_counter() - started, 1), "run": run_metadata("cpu")}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "predict.json", result)
    write_text_atomic(out_dir / "predict.md", markdown(result))
    return result


def _line(row: dict) -> str:
    m = row["median_s"]
    return (f"{row['windows']:6s} {row['file']:22s} end to end {m['end_to_end'] * 1000:7.1f} ms (decode {m['decode'] * 1000:6.1f}, "
            f"networks {m['networks'] * 1000:5.1f})  work memory {row['work_mib']:6.1f} MiB")


def markdown(result: dict) -> str:
    lines = [f"# `predict` on large image files ({result['threads']} threads, median of {result['repeats']} calls)", "",
             "| windows | file | size | MiB on disk | end to end (ms) | open | decode | proxy | crops | networks | "
             "full decode, for reference (ms) | work memory (MiB) | peak RSS (MiB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        m = {k: v * 1000 for k, v in row["median_s"].items()}
        lines.append(f"| {row['windows']} | {row['format']} | {row['width']} × {row['height']} | {row['file_mib']} | {m['end_to_end']:.1f} | "
                     f"{m['open']:.1f} | {m['decode']:.1f} | {m['proxy']:.1f} | {m['crops']:.1f} | {m['networks']:.1f} | "
                     f"{row['full_decode_for_reference_s'] * 1000:.0f} | {row['work_mib']:.0f} | {row['peak_rss_mib']:.0f} |")
    run = result["run"]
    lines += ["", f"Command: `python -m saccadelib bench-predict --threads {result['threads']} --repeats "
                  f"{result['repeats']}`; commit {run['git_commit']}, {run['device_name']}, "
                  f"wall {result['wall_s']:.0f} s. Model: T = {result['model']['glimpses']} glimpses read at "
                  f"{result['model'].get('crop_size', '?')}², fixed random weights. Stages in ms; work memory = peak RSS "
                  "minus the RSS before the first call (torch, the package and the model already loaded). Windows: wide = 0.6 of "
                  "the side (the model's initial glance), narrow = 0.05 (fine detail, as on Megapixel MNIST)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(measure_here(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
