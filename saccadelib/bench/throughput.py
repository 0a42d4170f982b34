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

# label → (registry model, task, image side the canvases are read at (None: as generated), model settings
# on top of the task's recipe for glimpse models)
CASES = {
    "ours, identification 100²": ("saccade", "identification", None, {}),
    "proxy CNN, identification 100²": ("proxy_cnn", "identification", None, {}),
    "ours, identification 2528²": ("saccade", "identification", 2528, {"crop_size": 64}),
    "ours, sum 100²": ("saccade", "sum", None, {}),
    "proxy CNN, sum 100²": ("proxy_cnn", "sum", None, {}),
}
TARGETS = {"ours, identification 100²": 1000, "ours, identification 2528²": 400}


def _setup(label: str, batch_size: int, extra: dict):
    from ..registry import GLIMPSE_MODELS, build, config_for
    from ..study.experiments import RECIPES, TASK_RECIPE
    from ..tasks import get_task

    name, task_name, side, settings = CASES[label]
    overrides = {**RECIPES[TASK_RECIPE[task_name]], **settings, **extra} if name in GLIMPSE_MODELS else {}
    torch.manual_seed(0)
    model = build(name, config_for(name, get_task(task_name).n_classes, overrides))
    task = get_task(task_name, image_side=side)
    stream = task.training_stream(10**7, batch_size, seed=0)  # batches are drawn by index: no epoch ends
    evaluation = task.evaluation_set("val")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    return model, stream, evaluation, optimizer


def _train_steps(model, stream, optimizer, first: int, steps: int) -> float:
    """Seconds for ``steps`` training steps, the batches generated inside the timing."""
    model.train()
    start = time.perf_counter()
    for b in range(first, first + steps):
        batch = stream.batch(b)
        loss, _ = model.training_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
    return time.perf_counter() - start


@torch.no_grad()
def _eval_batches(model, evaluation, batch_size: int, batches: int) -> float:
    model.eval()
    start = time.perf_counter()
    for b in range(batches):
        model.evaluate_batch(evaluation.as_dict(b * batch_size, (b + 1) * batch_size))
    return time.perf_counter() - start


def run(threads: int = 2, repeats: int = 5, steps: int = 10, batch_size: int = 128, eval_batch_size: int = 500,
        eval_batches: int = 2, cases: list[str] | None = None, model_settings: dict | None = None,
        out: Path | None = None, log=print) -> dict:
    from ..paths import results_dir
    from ..runinfo import run_metadata, write_json

    torch.set_num_threads(threads)
    labels = cases or list(CASES)
    unknown = [label for label in labels if label not in CASES]
    if unknown:
        raise ValueError(f"unknown throughput case(s) {unknown}; valid: {', '.join(CASES)}")
    setups = {label: _setup(label, batch_size, model_settings or {}) for label in labels}
    train_rates: dict[str, list[float]] = {label: [] for label in labels}
    eval_rates: dict[str, list[float]] = {label: [] for label in labels}
    for label, (model, stream, evaluation, optimizer) in setups.items():  # warm-up: allocator, caches
        _train_steps(model, stream, optimizer, 0, 2)
        _eval_batches(model, evaluation, eval_batch_size, 1)
    started = time.perf_counter()
    for r in range(repeats):
        for label, (model, stream, evaluation, optimizer) in setups.items():
            seconds = _train_steps(model, stream, optimizer, 2 + r * steps, steps)
            train_rates[label].append(steps * batch_size / seconds)
            seconds = _eval_batches(model, evaluation, eval_batch_size, eval_batches)
            eval_rates[label].append(eval_batches * eval_batch_size / seconds)
        log(f"round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in train_rates.items()))
    rows = []
    for label in labels:
        name, task, side, _ = CASES[label]
        rows.append({"case": label, "model": name, "task": task, "image_side": side or 100,
                     "train_canvases_per_s": round(statistics.median(train_rates[label]), 1),
                     "eval_canvases_per_s": round(statistics.median(eval_rates[label]), 1),
                     "train_rates": [round(x, 1) for x in train_rates[label]],
                     "target_train_canvases_per_s": TARGETS.get(label)})
    result = {"benchmark": "throughput", "threads": threads, "batch_size": batch_size, "steps_per_round": steps,
              "repeats": repeats, "statistic": "median", "model_settings": model_settings or {},
              "wall_s": round(time.perf_counter() - started, 1), "rows": rows, **run_metadata("cpu")}
    out = Path(out or results_dir() / "benchmarks" / "throughput.json")
    write_json(out, result)
    from ..paths import write_text_atomic

    write_text_atomic(out.with_suffix(".md"), markdown(result))
    result["out"] = str(out)
    return result


def markdown(result: dict) -> str:
    rows = {r["case"]: r for r in result["rows"]}
    lines = [f"Training steps with the batch generated inside the timing, {result['threads']} threads, batch "
             f"{result['batch_size']}, median of {result['repeats']} rounds of {result['steps_per_round']} steps "
             f"(`python -m saccadelib bench-throughput`).", "",
             "| case | training canvases/s | target | × proxy CNN (same task) | evaluation canvases/s |",
             "|---|---|---|---|---|"]
    for label, row in rows.items():
        proxy = rows.get(f"proxy CNN, {row['task']} 100²")
        ratio = f"{row['train_canvases_per_s'] / proxy['train_canvases_per_s']:.2f}" if proxy else ""
        target = row["target_train_canvases_per_s"] or ""
        lines.append(f"| {label} | {row['train_canvases_per_s']:.0f} | {target} | {ratio} | "
                     f"{row['eval_canvases_per_s']:.0f} |")
    return "\n".join(lines) + "\n"
