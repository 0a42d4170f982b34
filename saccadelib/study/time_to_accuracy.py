"""Time to accuracy: what our model reaches in a fixed number of training minutes on 2 CPU threads.

``python -m saccadelib bench-time-to-accuracy [--cases NAME ...] [--seeds 0 1 2]`` (default: the cases with
targets, ``HEADLINE``) trains each case as the
study's ``cpu`` profile trains a run (``study.runs``: the task's recipe, a cosine schedule over the epochs
the budget pays for at the measured seconds per epoch, validation after every epoch, the best-on-validation
weights scored on the whole test set) and writes ``results/benchmarks/time_to_accuracy.{json,md}``: per
case and seed the test accuracy, the minutes it trained, the canvases it saw, and whether it met its
target. Runs live in ``runs/time_to_accuracy/<case>/seed<k>/`` and resume; a finished run is read back,
not retrained. A Megapixel MNIST case trains as 06 (``resolution``) trains that model on that task at the
``cpu`` profile (its 5,000 stored training canvases, 1,000 validation, the settings 06 gives the model),
with the case's own budget and settings on top, and is scored on the 1,000 test canvases.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from ..paths import results_dir, runs_dir, write_text_atomic
from ..registry import task_settings
from ..runinfo import run_metadata, write_json
from .. import train as training_loop  # training_loop.train_model, looked up when called
from ..recipes import MAJORITY_READER
from .experiments import Training
from .profiles import resolution_study
from .runs import resolution_runs, train_overrides


@dataclass(frozen=True)
class Case:
    task: str
    image_side: int  # 100, or 2528 (the lazy upsample)
    model: str  # a registry name; glimpse models train with the task's recipe (registry.task_settings)
    minutes: float  # training budget, validation included
    target: float | None  # test accuracy the model should reach within it (None: a baseline, no target)
    settings: tuple[tuple[str, object], ...] = ()  # model settings on top of the recipe
    train: tuple[tuple[str, object], ...] = ()  # loop settings on top of the profile's (e.g. precision)
    # how much faster than the calibrated float32 epoch (reference/epoch_seconds.json) this case trains:
    # its budget pays for that many more epochs; the measured minutes say whether they fit
    speedup: float = 1.0


CASES = {
    "identification_100": Case("identification", 100, "saccade", 20, 0.90),
    # the target of a faster recipe: 90% within 15 minutes; the recipe (its reader at twice the policy's
    # rate), and beside it the recipe with one rate for all, as it was before (records/recipe_probes/)
    "identification_100_15min": Case("identification", 100, "saccade", 15, 0.90),
    "identification_100_15min_one_rate": Case("identification", 100, "saccade", 15, 0.90,
                                              settings=(("reader_lr_scale", 1.0),)),
    # the recipe with bf16 autocast, on CPUs with bf16 units: 911 against 757 canvases/s training
    # (results/benchmarks/throughput.md), no accuracy lost at equal epochs (records/conv_blocks_equal_epochs/)
    "identification_100_15min_bf16": Case("identification", 100, "saccade", 15, 0.90,
                                          train=(("precision", "bf16"),), speedup=911 / 757),
    # the last prediction alone trained, as a setting (the recipe's loss: records/window_probes/last_step,
    # 91.8 ± 0.4% after 40 epochs against 89.6 ± 0.7 for every glimpse's prediction)
    "identification_100_15min_last_step": Case("identification", 100, "saccade", 15, 0.90,
                                               settings=(("loss.every_step", False),)),
    "sum_100": Case("sum", 100, "saccade", 30, 0.95),
    "identification_2528": Case("identification", 2528, "saccade", 30, 0.85),
    # the efficiency benchmark's cheap baselines on the same task and budget (their accuracy beside their cost)
    "identification_2528_proxy_cnn": Case("identification", 2528, "proxy_cnn", 30, None),
    "identification_2528_resnet18_downsampled": Case("identification", 2528, "resnet18_downsampled", 30, None),
    # Megapixel MNIST's majority label within 30 minutes, read by a vote of 48² crops (recipes.MAJORITY_READER):
    # oracle windows (≥ 99.5%: the reader's ceiling) and the cells variant (≥ 99%)
    "megapixel_oracle_30min": Case("megapixel_majority", 1500, "oracle_glimpses", 30, 0.995,
                                   settings=tuple(MAJORITY_READER.items())),
    "megapixel_cells_30min": Case("megapixel_majority", 1500, "saccade_cells", 30, 0.99,
                                  settings=tuple(MAJORITY_READER.items())),
}
HEADLINE = ("identification_100", "sum_100", "identification_2528")  # the cases with targets: the default run


def run_case(name: str, seed: int, out_root: Path, log=print) -> dict:
    """Train (or resume, or read back) one case at one seed; returns its row."""
    case = CASES[name]
    if case.task.startswith("megapixel"):
        model_settings, train_settings = _as_resolution_trains(case, seed)
    else:
        training = Training(budget_min=case.minutes, seeds=(seed,))
        model_settings = task_settings(case.task, case.model, case.image_side)
        train_settings = train_overrides(case.task, case.image_side, case.model, training, seed)
    model_settings = {**model_settings, **dict(case.settings)}
    train_settings = {**train_settings, **dict(case.train),
                      "epochs": max(1, round(train_settings["epochs"] * case.speedup))}
    out_dir = out_root / name / f"seed{seed}"
    metrics_path = out_dir / "metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
    else:
        log(f"== {name} seed {seed}: {train_settings['epochs']} epochs in a {case.minutes:g}-minute budget")
        metrics = training_loop.train_model(case.model, case.task, out_dir, model_settings, train_settings)
    epochs = metrics["epochs_run"]
    return {"case": name, "seed": seed, "task": case.task, "image_side": case.image_side, "model": case.model,
            "budget_min": case.minutes, "target": case.target, "model_settings": model_settings,
            "train_settings": train_settings, "epochs": epochs, "best_epoch": metrics["best_epoch"],
            "canvases_seen": epochs * train_settings["train_size"],
            "minutes": round((metrics["train_s"] + metrics["val_s"]) / 60, 2),
            "best_val_accuracy": metrics["best_val_accuracy"], "test_accuracy": metrics["test"]["accuracy"],
            "test_step_accuracy": metrics["test"].get("step_accuracy"), "run": metrics["run"],
            "met": None if case.target is None else metrics["test"]["accuracy"] >= case.target}


def _as_resolution_trains(case: Case, seed: int) -> tuple[dict, dict]:
    """The model and loop settings 06 (``cpu`` profile) gives ``case.model`` on ``case.task``, with the
    case's budget in place of 06's."""
    study = resolution_study("cpu", budget_min=case.minutes)
    study = dataclasses.replace(study, tasks=(case.task,), labels=(), claim_runs=None,
                                training=dataclasses.replace(study.training, seeds=(seed,)))
    spec = next((s for s in resolution_runs(study) if s.model == case.model), None)
    if spec is None:
        raise ValueError(f"06 trains no {case.model} on {case.task}: the time-to-accuracy case cannot follow it")
    return dict(spec.model_overrides), dict(spec.train_overrides)


def run(cases: list[str] | None = None, seeds: tuple[int, ...] = (0,), out: Path | None = None,
        out_root: Path | None = None, log=print) -> dict:
    names = cases or list(HEADLINE)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown time-to-accuracy case(s) {unknown}; valid: {', '.join(CASES)}")
    out = Path(out or results_dir() / "benchmarks" / "time_to_accuracy.json")
    out_root = Path(out_root or runs_dir() / "time_to_accuracy")
    started = time.perf_counter()
    # rows of other cases and seeds already in ``out`` stay: running a subset adds to the table
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    for name in names:
        for seed in seeds:
            row = run_case(name, seed, out_root, log)
            rows = [r for r in rows if (r["case"], r["seed"]) != (name, seed)] + [row]
            result = {"benchmark": "time_to_accuracy", "rows": rows, "wall_s": round(time.perf_counter() - started, 1),
                      **run_metadata("cpu")}
            write_json(out, result)  # after every run: a stopped benchmark keeps what it measured
            write_text_atomic(out.with_suffix(".md"), markdown(result))
    result["out"] = str(out)
    return result


def markdown(result: dict) -> str:
    lines = ["Training on 2 CPU threads within a fixed budget (validation included), the best-on-validation "
             "weights scored on the whole test set: 10,000 canvases on the two-digit tasks, 1,000 on Megapixel MNIST "
             "(`python -m saccadelib bench-time-to-accuracy`).", "",
             "The reader's rate is the crop classifier's learning rate over the policy's (`reader_lr_scale`: the "
             "recipe's is 2; rows at ×1 trained every part at one rate). The loss says which predictions were "
             "trained: the last alone (the recipe's) or every glimpse's running prediction (`loss.every_step`; each "
             "row's settings are in the JSON beside this table). Rows in bf16 (autocast) train the epochs the "
             "budget pays for at bf16's measured speed. Minutes are measured: above the budget where the machine "
             "was shared.",
             "", "| case | model | reader's rate | loss | precision | budget min | target | seeds | test accuracy | per seed "
             "| minutes | epochs | canvases seen | met |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by_case: dict[str, list[dict]] = {}
    for row in result["rows"]:
        by_case.setdefault(row["case"], []).append(row)
    for name, rows in by_case.items():
        accs = [r["test_accuracy"] for r in rows]
        spread = f" ± {100 * statistics.stdev(accs):.1f}" if len(accs) > 1 else ""
        first = rows[0]
        target = "–" if first["target"] is None else f"{100 * first['target']:.0f}%"
        met = "–" if first["target"] is None else "yes" if all(r["met"] for r in rows) else "no"
        rate = f"×{first['model_settings'].get('reader_lr_scale', 1.0):g}" if first["model_settings"] else "–"
        loss = ("–" if not first["model_settings"] else
                "every glimpse" if first["model_settings"].get("loss.every_step", False) else "last")
        precision = first["train_settings"].get("precision", "fp32")
        lines.append(f"| {name} | {first['model']} | {rate} | {loss} | {precision} | {first['budget_min']:g} | {target} | "
                     f"{len(rows)} | {100 * statistics.mean(accs):.1f}%{spread} | "
                     f"{', '.join(f'{100 * a:.1f}' for a in accs)} | "
                     f"{statistics.mean(r['minutes'] for r in rows):.1f} | {first['epochs']} | "
                     f"{first['canvases_seen']:,} | {met} |")
    return "\n".join(lines) + "\n"
