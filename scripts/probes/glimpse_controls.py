"""What looking adds, at equal epochs: our model with each classifier input, beside random, grid and
oracle windows and the deterministic ablation, all with the same crop classifier and recipe.

    python scripts/probes/glimpse_controls.py run [--task identification] [--epochs 12] [--only NAME ...]
    python scripts/probes/glimpse_controls.py table [--task identification]   → markdown on stdout

Each variant trains with ``python -m saccadelib train`` (2 threads, cosine schedule, 2,000 validation
canvases, resumable in runs/probes/<task>_<variant>/) and is recorded in records/glimpse_controls_<task>/
with its command. Variants run one after another: on 2 cores, one heavy job at a time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from saccadelib.recipes import RECIPES, TASK_RECIPE  # noqa: E402

# variant → (registry model, model settings on top of the task's recipe, what it is)
VARIANTS = {
    "crops": ("saccade", {"classifier_reads": "crops"}, "learnt policy; classifier reads the crops alone"),
    "crops+state": ("saccade", {"classifier_reads": "crops+state"}, "learnt; crops and h_{t-1} (the original code)"),
    "crops+proxy": ("saccade", {"classifier_reads": "crops+proxy"}, "learnt; crops and the proxy features"),
    "crops+state+proxy": ("saccade", {"classifier_reads": "crops+state+proxy"}, "learnt; crops, h_{t-1} and proxy"),
    "deterministic": ("deterministic_glimpses", {"classifier_reads": "crops"}, "z = posterior mean, no KL, no decoder"),
    "random": ("random_glimpses", {"classifier_reads": "crops"}, "uniform random windows"),
    "grid": ("grid_glimpses", {"classifier_reads": "crops"}, "fixed grid windows"),
    "oracle": ("oracle_glimpses", {"classifier_reads": "crops"}, "windows on the digits' boxes"),
    "proxy_cnn": ("proxy_cnn", {}, "a CNN on the 32² proxy alone"),
}


def command(task: str, variant: str, epochs: int) -> list[str]:
    model, settings, _ = VARIANTS[variant]
    overrides = {**RECIPES[TASK_RECIPE[task]], **settings} if model != "proxy_cnn" else {}
    cmd = [sys.executable, "-m", "saccadelib", "train", "--model", model, "--task", task,
           "--out", f"runs/probes/{task}_{variant}", "--record", f"records/glimpse_controls_{task}/{variant}"]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    for key, value in {"epochs": epochs, "lr_schedule": "cosine", "threads": 2, "val_size": 2000,
                       "progress": "log"}.items():
        cmd += ["--train", f"{key}={value}"]
    return cmd


def run(task: str, epochs: int, only: list[str] | None) -> None:
    for variant in only or VARIANTS:
        print(f"== {variant}", flush=True)
        subprocess.run(command(task, variant, epochs), cwd=ROOT, check=True)


def table(task: str) -> None:
    import pandas as pd

    print("| variant | what | epochs | train s | val acc (best) | test acc | test acc per glimpse | hit rate per glimpse | all digits hit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for variant, (_, _, about) in VARIANTS.items():
        folder = ROOT / "records" / f"glimpse_controls_{task}" / variant
        if not (folder / "metrics.json").exists():
            continue
        metrics = json.loads((folder / "metrics.json").read_text())
        history = pd.read_csv(folder / "history.csv")
        test = metrics["test"]
        steps = "/".join(f"{100 * a:.1f}" for a in test.get("step_accuracy", []))
        hits = "/".join(f"{h:.2f}" for h in test.get("hit_rate", []))
        both = f"{test['both_digits_hit']:.2f}" if "both_digits_hit" in test else ""
        print(f"| `{variant}` | {about} | {len(history)} | {metrics['train_s']:.0f} | "
              f"{100 * metrics['best_val_accuracy']:.1f} | {100 * test['accuracy']:.1f} | {steps} | {hits} | {both} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "table"))
    parser.add_argument("--task", default="identification")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS))
    args = parser.parse_args()
    run(args.task, args.epochs, args.only) if args.action == "run" else table(args.task)


if __name__ == "__main__":
    main()
