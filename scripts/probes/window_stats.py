"""Probe: the window statistics of a trained run's best checkpoint on its test set (saccadelib.window_stats),
scored twice for a model that can draw its windows: with the posterior's mean (how the study scores) and
with one sample from it. Written as ``windows.json`` beside the run's record.

    .venv/bin/python scripts/probes/window_stats.py RUN_DIR RECORD_DIR [RUN_DIR RECORD_DIR ...]
"""
import dataclasses
import json
import sys
from pathlib import Path

import torch

from saccadelib.checkpoint import load_checkpoint
from saccadelib.evaluation import evaluate
from saccadelib.inference import load_model
from saccadelib.runinfo import run_metadata, write_json
from saccadelib.tasks import get_task


def score(run_dir: Path, record_dir: Path) -> dict:
    checkpoint = run_dir / "best.pt"
    model, meta = load_model(checkpoint, glimpses_only=False)
    train = json.loads((run_dir / "config.json").read_text())["train"]
    dataset = get_task(meta["task"], image_side=train.get("image_side")).evaluation_set("test")
    out = {"checkpoint": str(checkpoint), "epoch": load_checkpoint(checkpoint)["epoch"], "task": meta["task"],
           "dataset": dataset.describe(), "run": run_metadata()}
    modes = {"posterior_mean": False}
    if hasattr(model.cfg, "eval_sample"):
        modes["posterior_sample"] = True
    for name, sample in modes.items():
        if hasattr(model.cfg, "eval_sample"):
            model.cfg = dataclasses.replace(model.cfg, eval_sample=sample)
        scores = evaluate(model, dataset, seed=train["seed"], window_stats=True)
        out[name] = {k: v for k, v in scores.items() if k != "n"}
        print(f"{run_dir} {name}: accuracy {scores['accuracy']:.4f}  "
              f"side {scores['windows']['all']['side_px']['mean']:.1f} px  detail {scores['windows']['all']['detail']}  "
              f"strictly held {scores['windows']['all_strictly_held']:.3f}", flush=True)
    write_json(record_dir / "windows.json", out)
    return out


if __name__ == "__main__":
    torch.set_num_threads(2)
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit("usage: window_stats.py RUN_DIR RECORD_DIR [RUN_DIR RECORD_DIR ...]")
    for run, record in zip(args[::2], args[1::2]):
        score(Path(run), Path(record))
