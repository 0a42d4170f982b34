"""Training and evaluation throughput: our model beside the proxy-only CNN, in one process.

``python -m saccadelib bench-throughput`` times whole training steps as the training loop runs them
(drawing the batch from the task's stream, i.e. generating the canvases, forward, backward, clipping and
the optimizer step) and evaluation batches, for each case in turn, ``repeats`` rounds interleaved so that
a change in the machine's load hits every case alike; it reports the median canvases per second and the
ratios to the proxy-only CNN on the same task. Targets on 2 CPU threads (docs/efficiency.md): our model on
identification 100² at ≥ 1,000 training canvases/s and at 2528² (64² glimpses) at ≥ 400/s.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from ..recipes import LARGE_CROP, LARGE_SIDE, crop_settings
from ..registry import task_settings
from ..config import apply_overrides
from ..evaluation import autocast
from ..paths import results_dir, write_text_atomic
from ..registry import GLIMPSE_MODELS, build, config_for
from ..runinfo import run_metadata, write_json
from ..tasks import get_task
from ..train import prepare_model
from ..train_config import TrainConfig

# label → (registry model, task, image side the canvases are read at (None: as generated), model settings
# on top of the task's recipe for glimpse models)
CASES = {
    "ours, identification 100²": ("saccade", "identification", None, {}),
    "proxy CNN, identification 100²": ("proxy_cnn", "identification", None, {}),
    "ours, identification 2528²": ("saccade", "identification", LARGE_SIDE, crop_settings(LARGE_CROP)),
    "ours, sum 100²": ("saccade", "sum", None, {}),
    "proxy CNN, sum 100²": ("proxy_cnn", "sum", None, {}),
}
TARGETS = {"ours, identification 100²": 1000, "ours, identification 2528²": 400}


class _Case:
    """One case as the training loop would run it: model, optimizer, stream, validation set, execution."""

    def __init__(self, label: str, batch_size: int, model_settings: dict, execution: dict):
        name, task_name, side, settings = CASES[label]
        overrides = {**task_settings(task_name, name), **settings, **model_settings} if name in GLIMPSE_MODELS else {}
        torch.manual_seed(0)
        self.config = apply_overrides(TrainConfig(task=task_name), execution)
        self.device = torch.device("cpu")
        self.model = prepare_model(build(name, config_for(name, get_task(task_name).n_classes, overrides)),
                                   self.config, self.device)
        task = get_task(task_name, image_side=side)
        self.stream = task.training_stream(10**7, batch_size, seed=0)  # drawn by index: no epoch ends
        self.evaluation = task.evaluation_set("val")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)

    def train_steps(self, first: int, steps: int) -> float:
        """Seconds for ``steps`` training steps, the batches generated inside the timing."""
        self.model.train()
        start = time.perf_counter()
        for b in range(first, first + steps):
            batch = self.stream.batch(b)
            with autocast(self.device, self.config.precision):
                loss, _ = self.model.training_loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
            self.optimizer.step()
        return time.perf_counter() - start

    @torch.no_grad()
    def eval_batches(self, batch_size: int, batches: int) -> float:
        self.model.eval()
        start = time.perf_counter()
        for b in range(batches):
            with autocast(self.device, self.config.precision):
                self.model.evaluate_batch(self.evaluation.as_dict(b * batch_size, (b + 1) * batch_size))
        return time.perf_counter() - start


def run(threads: int = 2, repeats: int = 5, steps: int = 10, batch_size: int = 128, eval_batch_size: int = 500,
        eval_batches: int = 2, cases: list[str] | None = None, model_settings: dict | None = None,
        variants: dict[str, dict] | None = None, out: Path | None = None, log=print) -> dict:
    """``variants``: name → training-loop execution settings (``TrainConfig``: precision, channels_last,
    compile), each case measured under each, interleaved; default one variant with today's defaults."""
    torch.set_num_threads(threads)
    labels = cases or list(CASES)
    unknown = [label for label in labels if label not in CASES]
    if unknown:
        raise ValueError(f"unknown throughput case(s) {unknown}; valid: {', '.join(CASES)}")
    variants = variants or {"default": {}}
    runs = {(label, v): _Case(label, batch_size, model_settings or {}, execution)
            for label in labels for v, execution in variants.items()}
    train_rates = {key: [] for key in runs}
    eval_rates = {key: [] for key in runs}
    for case in runs.values():  # warm-up: allocator, caches, compilation
        case.train_steps(0, 3)
        case.eval_batches(eval_batch_size, 1)
    started = time.perf_counter()
    for r in range(repeats):
        for key, case in runs.items():
            train_rates[key].append(steps * batch_size / case.train_steps(3 + r * steps, steps))
            eval_rates[key].append(eval_batches * eval_batch_size / case.eval_batches(eval_batch_size, eval_batches))
        log(f"round {r + 1}/{repeats}: " + ", ".join(f"{k[0]} [{k[1]}] {v[-1]:.0f}/s" for k, v in train_rates.items()))
    rows = []
    for (label, variant), case in runs.items():
        name, task, side, _ = CASES[label]
        rows.append({"case": label, "variant": variant, "execution": variants[variant], "model": name, "task": task,
                     "image_side": side or 100,
                     "train_canvases_per_s": round(statistics.median(train_rates[label, variant]), 1),
                     "eval_canvases_per_s": round(statistics.median(eval_rates[label, variant]), 1),
                     "train_rates": [round(x, 1) for x in train_rates[label, variant]],
                     "target_train_canvases_per_s": TARGETS.get(label)})
    result = {"benchmark": "throughput", "threads": threads, "batch_size": batch_size, "steps_per_round": steps,
              "repeats": repeats, "statistic": "median", "model_settings": model_settings or {},
              "wall_s": round(time.perf_counter() - started, 1), "rows": rows, **run_metadata("cpu")}
    out = Path(out or results_dir() / "benchmarks" / "throughput.json")
    write_json(out, result)
    write_text_atomic(out.with_suffix(".md"), markdown(result))
    result["out"] = str(out)
    return result


def markdown(result: dict) -> str:
    rows = result["rows"]
    lines = [f"Training steps with the batch generated inside the timing, {result['threads']} threads, batch "
             f"{result['batch_size']}, median of {result['repeats']} rounds of {result['steps_per_round']} steps "
             f"(`python -m saccadelib bench-throughput`).", "",
             "| case | execution | training canvases/s | target | × proxy CNN (same task and side, same execution) | "
             "evaluation canvases/s |", "|---|---|---|---|---|---|"]
    for row in rows:
        proxy = next((r for r in rows if r["model"] == "proxy_cnn" and r["task"] == row["task"]
                      and r["image_side"] == row["image_side"] and r["variant"] == row["variant"]), None)
        ratio = f"{row['train_canvases_per_s'] / proxy['train_canvases_per_s']:.2f}" if proxy else ""
        target = row["target_train_canvases_per_s"] or ""
        lines.append(f"| {row['case']} | {row['variant']} | {row['train_canvases_per_s']:.0f} | {target} | {ratio} | "
                     f"{row['eval_canvases_per_s']:.0f} |")
    return "\n".join(lines) + "\n"
