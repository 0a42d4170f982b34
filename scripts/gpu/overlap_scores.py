"""Score trained two-digit runs on their task's test canvases by digit overlap, where the runs are (the
GPU machine keeps no checkpoint for later): one row per (run, overlap band), as ``study.accuracy_by_digit_overlap``
does for the runs of a notebook.

Usage: python scripts/gpu/overlap_scores.py OUT.csv RUN_FOLDER [RUN_FOLDER ...]
"""
from __future__ import annotations

import json
import sys

import pandas as pd
import torch

from saccadelib.datasets.twodigit import eval_set
from saccadelib.evaluation import evaluate
from saccadelib.inference import load
from saccadelib.study.readback import by_overlap_band


def main(out: str, folders: list[str]) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for folder in folders:
        model = load(f"{folder}/best.pt").to(device)
        task = model.meta["task"]
        seed = json.loads(open(f"{folder}/config.json").read())["train"]["seed"]  # keys its evaluation draws
        dataset = eval_set(task, "test")
        right = evaluate(model, dataset, seed=seed, per_canvas=True)["correct"]
        rows += [{"run": folder, "task": task, **band} for band in by_overlap_band(right, dataset.boxes)]
    frame = pd.DataFrame(rows)
    frame.to_csv(out, index=False)
    print(frame.to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
