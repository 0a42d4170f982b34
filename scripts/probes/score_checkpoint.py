"""Probe: score a training checkpoint on a split of its task (for a run stopped before its own test
scoring), written as JSON.

    .venv/bin/python scripts/probes/score_checkpoint.py RUN_DIR/best.pt --split test --out FILE.json

``--task`` scores it on another task with the same classes (a model trained on the Megapixel MNIST PNG
files, task folder, on the in-memory megapixel_majority set).
"""
import argparse

from saccadelib.inference import load_model
from saccadelib.runinfo import run_metadata, write_json
from saccadelib.tasks import get_task
from saccadelib.checkpoint import load_checkpoint
from saccadelib.evaluation import evaluate

parser = argparse.ArgumentParser()
parser.add_argument("checkpoint")
parser.add_argument("--split", default="test")
parser.add_argument("--task", default=None, help="default: the checkpoint's own task")
parser.add_argument("--out", required=True)
args = parser.parse_args()
model, meta = load_model(args.checkpoint, glimpses_only=False)
dataset = get_task(args.task or meta["task"]).evaluation_set(args.split)
scores = evaluate(model, dataset)
write_json(args.out, {"checkpoint": args.checkpoint, "task": args.task or meta["task"], "epoch": load_checkpoint(args.checkpoint)["epoch"],
                      "split": args.split, "scores": scores, "dataset": dataset.describe(), "run": run_metadata()})
print(scores)
