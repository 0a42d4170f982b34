"""Gigapixel files: a model trained on 1500² Megapixel MNIST reading the same test canvases from pyramidal
TIFFs of 6,000², 24,000² and 96,000², without retraining.

``python -m saccadelib bench-pyramid --checkpoint BEST_PT [--sides 6000 24000 96000] [--limit 100]``

1. Writes (or reuses) the first ``limit`` test canvases at each side (``data megapixel-pyramid``) and, at
   1500², as PNG files (``data megapixel-png``): the same canvases.
2. Scores the checkpoint on each (``score_folder``): accuracy at 1500² from the PNGs, and at every side from
   the pyramids.
3. Measures ``predict`` end to end on ``cost_files`` files per side, each file in a fresh process (its
   memory its own): the median over ``repeats`` calls after one warm-up, the peak work memory (the
   process's peak RSS over the calls less its RSS with the model loaded), the tiles and compressed bytes
   read per call beside the file's size.
4. What a user sees for one call: ``python -m saccadelib predict FILE --checkpoint BEST_PT`` run as a command
   on the first file of each side, its wall time and the peak RSS of its process (starting Python and
   torch and loading the model included).
5. Beside it, the cost of ResNet-18 on a 500² downsample read from the same pyramid (the proxy path at
   500², then the network), with fixed random weights unless ``--resnet-checkpoint`` gives trained ones
   (then also its accuracy on the same canvases at every side).

Writes ``results/benchmarks/pyramid.{json,md}``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from .. import inference
from ..datasets import megapixel, megapixel_png, megapixel_pyramid
from ..inference import class_names, load_model, read_labels
from ..paths import data_dir, results_dir, write_text_atomic
from ..registry import build, config_for
from ..runinfo import run_metadata, write_json
from ..sources import TensorSource, open_image
from .cost import _peak_rss_mib, _rss_mib

SIDES = (6_000, 24_000, 96_000)
RESNET_SIDE = 500


def measure_here(spec: dict) -> dict:
    """In this (fresh) process: ``predict`` on one file ``repeats`` times; time, memory, what was read."""
    torch.set_num_threads(spec.get("threads", 2))
    if spec.get("resnet"):
        model = _resnet(spec.get("resnet_checkpoint"))
    else:
        model, _ = inference.load_model(spec["checkpoint"])
    idle = _rss_mib()
    times, reads = [], None
    for k in range(spec.get("repeats", 5) + 1):
        start = time.perf_counter()
        if spec.get("resnet"):
            logits, source = _resnet_logits(model, spec["file"])
            reads = source.reads() if hasattr(source, "reads") else None
            result = {"class": str(int(logits.argmax()))}
        else:
            result = inference.predict(spec["file"], model)
            reads = result.get("read")
        if k:  # the first call warms up
            times.append(time.perf_counter() - start)
    return {"file": spec["file"], "median_s": statistics.median(times), "work_mib": round(_peak_rss_mib() - idle, 1),
            "read": reads, "class": result["class"]}


def _resnet(checkpoint: str | None):
    if checkpoint:
        return load_model(checkpoint, glimpses_only=False)[0]
    torch.manual_seed(0)
    return build("resnet18_downsampled", config_for("resnet18_downsampled", 10, {"input_side": RESNET_SIDE,
                                                                                  "channels": 1})).eval()


def _resnet_logits(model, path):
    """ResNet-18's logits for one file, read as its 500² downsample; and the file's source."""
    source = open_image(path, model.cfg.channels, convert=True)
    with torch.no_grad():
        logits = model.evaluate_batch({"image": _downsample(source), "label": torch.zeros(1, dtype=torch.long)})["logits"]
    return logits, source


def _downsample(source):
    """The 500² downsample ResNet-18 reads, from the pyramid's level that holds it (the proxy path)."""
    return TensorSource(source.proxy(RESNET_SIDE))


def resnet_accuracy(checkpoint: str | Path, folder: Path, threads: int = 2) -> float:
    """A trained ResNet-18 (500²) scored on the files of ``folder`` (its labels.csv), each read as a 500²
    downsample from the file's level that holds it."""
    torch.set_num_threads(threads)
    model, meta = load_model(checkpoint, glimpses_only=False)
    rows = read_labels(folder / "labels.csv", folder, class_names(meta, model.cfg.n_classes))
    right = sum(int(_resnet_logits(model, path)[0].argmax()) == label for path, label in rows)
    return right / len(rows)


def fresh_call(checkpoint: str | Path, file: str | Path, threads: int = 2) -> dict:
    """One ``python -m saccadelib predict FILE`` as a user runs it: its wall time and its process's peak RSS."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a full pipe would stall the child
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "saccadelib", "predict", str(file), "--checkpoint",
                                    str(checkpoint)], stdout=subprocess.DEVNULL, stderr=errors, env=env)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own resource use, not every child's
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"predict {file} failed: {errors.read().decode().strip().splitlines()[-1:]}")
    return {"fresh_call_s": round(wall, 2), "fresh_call_peak_mib": round(usage.ru_maxrss / 1024, 1)}


def measure(spec: dict, timeout_s: float = 900) -> dict:
    """``measure_here`` in a fresh process."""
    done = subprocess.run([sys.executable, "-m", "saccadelib.bench.pyramid", json.dumps(spec)], capture_output=True,
                          text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"pyramid measurement failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(checkpoint: str | Path, sides=SIDES, limit: int = 100, cost_files: int = 3, repeats: int = 5,
        threads: int = 2, resnet_checkpoint: str | Path | None = None, out: Path | None = None,
        data_root: Path | None = None, log=print) -> dict:
    log = log or (lambda *_: None)
    out = Path(out or results_dir() / "benchmarks" / "pyramid.json")
    root = Path(data_root or data_dir() / "megapixel_pyramid")
    started = time.perf_counter()
    native = megapixel.stored_set("test").config.side  # 1500: the side the model was trained at
    folders = {native: root / str(native) / "test"}
    megapixel_png.export_png("test", folders[native], limit=limit)
    for side in sides:
        folders[side] = root / str(side) / "test"
        tick = time.perf_counter()
        megapixel_pyramid.export(side, "test", folders[side], limit=limit, log=None)
        log(f"bench-pyramid: {limit} test canvases at {side:,}² ready ({time.perf_counter() - tick:.0f} s)")
    rows = []
    for side, folder in folders.items():
        scored = inference.score_folder(str(checkpoint), folder, folder / "labels.csv", progress=False)
        files = sorted(folder.glob("*.tif" if side != native else "*.png"))[:cost_files]
        costs = [measure({"checkpoint": str(checkpoint), "file": str(f), "repeats": repeats, "threads": threads})
                 for f in files]
        row = {"side": side, "format": "png" if side == native else "pyramidal tiff", "canvases": scored["n"],
               "accuracy": scored["accuracy"], "file_mb": round(statistics.mean(f.stat().st_size for f in files) / 1e6, 3),
               "predict_ms": round(1000 * statistics.median(c["median_s"] for c in costs), 1),
               "work_mib": max(c["work_mib"] for c in costs), **fresh_call(checkpoint, files[0], threads)}
        if side != native:
            row.update(tiles_read=statistics.mean(c["read"]["tiles_read"] for c in costs),
                       bytes_read=statistics.mean(c["read"]["bytes_read"] for c in costs))
            row["bytes_read_share"] = row["bytes_read"] / statistics.mean(f.stat().st_size for f in files)
            resnet = [measure({"resnet": True, "resnet_checkpoint": str(resnet_checkpoint or ""), "file": str(f),
                               "repeats": repeats, "threads": threads}) for f in files]
            row.update(resnet_ms=round(1000 * statistics.median(c["median_s"] for c in resnet), 1),
                       resnet_work_mib=max(c["work_mib"] for c in resnet))
            if resnet_checkpoint:
                row["resnet_accuracy"] = resnet_accuracy(resnet_checkpoint, folder, threads)
        rows.append(row)
        log(f"bench-pyramid: {side:,}² accuracy {row['accuracy']:.3f}, predict {row['predict_ms']} ms, "
            f"{row['work_mib']} MiB")
    result = {"benchmark": "pyramid", "checkpoint": str(checkpoint), "limit": limit, "cost_files": cost_files,
              "repeats": repeats, "threads": threads, "resnet_checkpoint": str(resnet_checkpoint or ""),
              "rows": rows, "wall_s": round(time.perf_counter() - started, 1), **run_metadata("cpu")}
    write_json(out, result)
    write_text_atomic(out.with_suffix(".md"), markdown(result))
    result["out"] = str(out)
    return result


def markdown(result: dict) -> str:
    lines = [f"A model trained on 1500² Megapixel MNIST (`{result['checkpoint']}`) on the same {result['limit']} test "
             "canvases read from 1500² PNGs and from pyramidal TIFFs of larger sides; `predict` end to end per file "
             f"in a fresh process ({result['threads']} threads, median of {result['repeats']} calls over "
             f"{result['cost_files']} files). `python -m saccadelib bench-pyramid`.", "",
             "| side | file | accuracy | MB per file | predict ms | work MiB | one `predict` command: s | its peak MiB | "
             "tiles read | bytes read | of the file | ResNet-18 on a 500² downsample: accuracy | ms | work MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        read = (f"{r['tiles_read']:.0f} | {r['bytes_read'] / 1e3:.0f} kB | {100 * r['bytes_read_share']:.2f}%"
                if "tiles_read" in r else "whole | whole | 100%")
        accuracy = f"{100 * r['resnet_accuracy']:.1f}%" if "resnet_accuracy" in r else "untrained"
        resnet = f"{accuracy} | {r['resnet_ms']} | {r['resnet_work_mib']}" if "resnet_ms" in r else "– | – | –"
        lines.append(f"| {r['side']:,}² | {r['format']} | {100 * r['accuracy']:.1f}% | {r['file_mb']} | "
                     f"{r['predict_ms']} | {r['work_mib']} | {r.get('fresh_call_s', '–')} | {r.get('fresh_call_peak_mib', '–')} | "
                     f"{read} | {resnet} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(measure_here(json.loads(sys.argv[1]))))
