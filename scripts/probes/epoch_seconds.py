"""Probe: seconds per epoch for every (task, canvas, model) of the cpu profile: training on 20,000
canvases, and scoring the 2,000 validation canvases that follow each epoch.

The cpu profile gives each model the same minutes (training and validation) and turns them into a fixed
number of epochs with these numbers (``saccadelib.study.experiments.EPOCH_SECONDS`` and ``VAL_SECONDS``,
read from ``reference/epoch_seconds.json``), so a run's result does not depend on what else shares the CPU.

Training seconds come from the study's own finished cpu runs when ``--from-runs`` names their folders
(the mean over all their epochs: sustained training, the study's settings); a pair without finished runs
trains two short probe epochs through the shared loop (same recipe, batch size, 2 threads) and keeps
their mean, probing again while the two disagree by more than 15%. A short probe once ran up to a third
fast or slow against the runs it sized, hence the runs first. Validation is timed directly: the model, untrained (scoring costs the same), scores the
validation canvases twice and the mean counts. Nothing else may run on the machine meanwhile.

    .venv/bin/python scripts/probes/epoch_seconds.py --from-runs results/0*/runs   # about 3 minutes
    .venv/bin/python scripts/probes/epoch_seconds.py            # probes every pair: about 10 minutes
    .venv/bin/python scripts/probes/epoch_seconds.py --only sum --models saccade random_glimpses  # some
    .venv/bin/python scripts/probes/epoch_seconds.py --sides 1500 1000   # 06's runs, and IPS's paper encoder

Our machine is not the same speed every day (records/machine_speed/: 2.1 times slower a day later, same
code). New pairs measured on a slower day would size their runs against a faster stored file, so
``--reference TASK:SIDE:NAME ...`` measures stored pairs again in the same invocation and scales what it
measures by stored / measured (the geometric mean over the references, training and validation apart),
recording the raw seconds, each reference's ratio and their spread beside the scaled ones:

    .venv/bin/python scripts/probes/epoch_seconds.py --sides 1500 --models ips_small \
        --reference megapixel_majority:1500:saccade_cells megapixel_majority:1500:proxy_cnn
"""
import argparse
import csv
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from saccadelib.registry import build
from saccadelib.study import experiments as study
from saccadelib.study.profiles import resolution_study
from saccadelib.recipes import LARGE_SIDE
from saccadelib.registry import task_settings
from saccadelib.study.runs import train_overrides
from saccadelib.tasks import get_task
from saccadelib.train import train_model
from saccadelib.settings import resolve
from saccadelib.runinfo import run_metadata, write_json
from saccadelib.evaluation import evaluate

# (task, canvas, model, canvases per probe epoch): about 10-30 s an epoch each
GLIMPSE = ("saccade", "deterministic_glimpses", "random_glimpses", "grid_glimpses", "oracle_glimpses")
PROBES = [("sum", 100, m, 8000) for m in GLIMPSE] + \
         [("sum", 100, m, n) for m, n in [("proxy_cnn", 12000), ("ram", 12000), ("resnet18", 1500)]] + \
         [("identification", 100, m, 8000) for m in GLIMPSE] + \
         [("identification", 100, m, n) for m, n in [("proxy_cnn", 12000), ("ram", 12000), ("resnet18", 1500)]] + \
         [("identification", LARGE_SIDE, m, n) for m, n in [("saccade", 6000), ("random_glimpses", 6000),
                                                                  ("proxy_cnn", 12000), ("resnet18_downsampled", 400)]]
VAL_CANVASES = 2_000
# Two probe epochs further apart than this were not both measured on an idle machine: one probe's epochs
# once read 6.6 and 11.6 s, and their mean gave that model three epochs fewer than its equal budget paid for.
STEADY_SPREAD = 1.15
RESOLUTION_CANVASES = 1_000  # per probe epoch in 06 (Megapixel MNIST has 5,000 training canvases)
# IPS with its paper's encoder (ResNet-18's stages, 22 times the small encoder's FLOPs a patch) is measured
# beside 06's runs on fewer canvases, so that its cost on our cores is a number and ips_encoder can size it
PAPER_IPS_ENCODER, PAPER_IPS_CANVASES = "resnet18_2stages", 200


def resolution_probes(config=None) -> list[tuple]:
    """(task, side, run name, model, settings, data settings, canvases) of 06 (study.experiments.resolution_entries
    of the cpu profile, or ``config``), and IPS with its paper's encoder on each of its data sets."""
    from saccadelib.study.experiments import resolution_entries
    from saccadelib.study.runs import resolution_data

    config = config or resolution_study("cpu")
    paper_ips = dataclasses.replace(config, models=("ips",), labels=(), proxy_sweep=(), ips_encoder=PAPER_IPS_ENCODER)
    entries = [(*entry, RESOLUTION_CANVASES) for entry in resolution_entries(config)]
    if config.ips_encoder != PAPER_IPS_ENCODER:
        entries += [(*entry, PAPER_IPS_CANVASES) for entry in resolution_entries(paper_ips)]
    return [(task, side, name, model, settings, resolution_data(config, task, side), canvases)
            for task, side, name, model, settings, canvases in entries]


def key_of(config: dict) -> tuple[str, int, str]:
    """(task, canvas the model reads, model) of a run's config.json."""
    model, train = config["model"], config["train"]
    side = train.get("image_side") or model["config"].get("image_side") or 100  # older records kept it in the model's
    return train["task"], int(side), model["name"]


def from_runs(folders: list[Path]) -> dict[tuple[str, int, str], dict]:
    """Mean training seconds per 20k canvases (and validation seconds per 2k, where the history has them)
    over every epoch of the finished runs in ``folders``."""
    per_key: dict[tuple, dict[str, list[float]]] = {}
    for folder in folders:
        config_path, history_path = folder / "config.json", folder / "history.csv"
        if not (folder / "metrics.json").exists() or not history_path.exists():
            continue
        config = json.loads(config_path.read_text())
        train = config["train"]
        if train.get("device", "cpu") != "cpu" or train.get("threads") != 2:
            continue
        with open(history_path) as f:
            rows = list(csv.DictReader(f))
        entry = per_key.setdefault(key_of(config), {"train": [], "val": [], "runs": []})
        entry["train"] += [float(r["train_s"]) * 20_000 / train["train_size"] for r in rows]
        entry["val"] += [float(r["val_s"]) * VAL_CANVASES / train["val_size"] for r in rows if r.get("val_s")]
        entry["runs"].append(str(folder))
    return per_key


def probe_training(task: str, canvas: int, model: str, canvases: int, threads: int, settings: dict | None = None,
                   data: dict | None = None) -> list[float]:
    training = study.Training(budget_min=None, epochs=2,
                              train={"train_size": canvases, "val_size": 200, "test_size": 200, "threads": threads})
    settings = task_settings(task, model, canvas) if settings is None else settings
    train = train_overrides(task, canvas, model, training, seed=0)
    if data is not None:  # 06: the data settings say which canvases, not image_side
        train = {**{k: v for k, v in train.items() if k != "image_side"}, **data}
    with tempfile.TemporaryDirectory() as tmp:
        train_model(model, task, tmp, settings, train)
        with open(Path(tmp) / "history.csv") as f:
            return [float(row["train_s"]) for row in csv.DictReader(f)]


def steady_probe(probe, tries: int = 3) -> tuple[list[float], list[list[float]]]:
    """``probe()``'s epochs, probed again while the slower exceeds the faster by more than STEADY_SPREAD
    (something else took the CPU for one of them), at most ``tries`` times; the unsteady probes come back
    too, to be recorded."""
    discarded = []
    for _ in range(tries):
        epochs = probe()
        if max(epochs) <= STEADY_SPREAD * min(epochs):
            return epochs, discarded
        discarded.append(epochs)
    raise RuntimeError(f"probe epochs never agreed within {STEADY_SPREAD:.2f}× in {tries} tries ({discarded}): "
                       "the machine is busy; stop other work and measure again")


def probe_validation(task: str, canvas: int, model: str, threads: int, settings: dict | None = None,
                     data: dict | None = None, at_most: int = VAL_CANVASES) -> list[float]:
    """Seconds to score VAL_CANVASES validation canvases, twice: ``at_most`` of them scored (all the split
    has, if fewer) and scaled."""
    training = study.Training(budget_min=None, epochs=1, train={"val_size": VAL_CANVASES, "threads": threads})
    settings = task_settings(task, model, canvas) if settings is None else settings
    model_cfg, _, train_cfg = resolve(model, task, model_overrides=settings,
                                      train_overrides=train_overrides(task, canvas, model, training, seed=0))
    torch.set_num_threads(threads)
    net = build(model, model_cfg)
    if data is None:
        val = get_task(task, image_side=None if canvas == 100 else canvas).evaluation_set("val")
    else:
        val = get_task(task, data.get("data_root"), canvas_side=data.get("canvas_side", 100)).evaluation_set("val")
    seconds = []
    scored = min(at_most, len(val))  # Megapixel MNIST's validation split has 1,000: scaled to 2,000
    for _ in range(2):
        tick = time.perf_counter()
        evaluate(net, val, train_cfg.eval_batch_size, scored, "cpu", train_cfg.precision)
        seconds.append(round((time.perf_counter() - tick) * VAL_CANVASES / scored, 2))
    return seconds


def measure_pair(task: str, canvas: int, name: str, model: str, settings: dict | None, data: dict | None,
                 canvases: int, threads: int, runs: dict | None = None) -> dict:
    """One pair's record: training seconds per 20k canvases from finished runs or a steady probe, and
    validation seconds per 2k from those runs or timed directly."""
    record = {"task": task, "canvas": canvas, "model": name}
    if runs:
        record.update(train_source="finished cpu runs", runs=runs["runs"], epochs=len(runs["train"]),
                      seconds_per_20k=round(statistics.mean(runs["train"]), 1))
    else:
        epochs, discarded = steady_probe(lambda: probe_training(task, canvas, model, canvases, threads, settings, data))
        record.update(train_source="probe", probe_canvases=canvases, epoch_train_s=epochs,
                      seconds_per_20k=round(statistics.mean(epochs) * 20_000 / canvases, 1))
        if discarded:
            record["discarded_epoch_train_s"] = discarded
    if runs and runs["val"]:
        record.update(val_source="finished cpu runs", val_seconds_per_2k=round(statistics.mean(runs["val"]), 2))
    else:
        # 06's runs score as many canvases as their probe epochs train (IPS's paper encoder: 200)
        at_most = VAL_CANVASES if data is None else min(VAL_CANVASES, canvases)
        val = probe_validation(task, canvas, model, threads, settings, data, at_most)
        record.update(val_source="probe", val_s=val, val_seconds_per_2k=round(statistics.mean(val), 2))
    return record


def parse_reference(text: str) -> tuple[str, int, str]:
    parts = text.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        raise SystemExit(f"--reference takes TASK:SIDE:NAME (e.g. sum:100:saccade), got {text!r}")
    return parts[0], int(parts[1]), parts[2]


def speed_ratios(stored: list[dict], again: list[dict]) -> dict:
    """How to put seconds measured today on the stored file's scale: per reference pair, stored / measured
    again, training and validation apart; their geometric means scale the new pairs."""
    by_key = {(r["task"], r["canvas"], r["model"]): r for r in stored}
    references = []
    for record in again:
        key = (record["task"], record["canvas"], record["model"])
        if key not in by_key:
            raise SystemExit(f"--reference {':'.join(map(str, key))} has no stored entry to scale against; "
                             "name a pair the file already holds")
        old = by_key[key]
        references.append({"pair": ":".join(map(str, key)), "stored_seconds_per_20k": old["seconds_per_20k"],
                           "measured_seconds_per_20k": record["seconds_per_20k"],
                           "stored_val_seconds_per_2k": old["val_seconds_per_2k"],
                           "measured_val_seconds_per_2k": record["val_seconds_per_2k"],
                           "train_ratio": round(old["seconds_per_20k"] / record["seconds_per_20k"], 3),
                           "val_ratio": round(old["val_seconds_per_2k"] / record["val_seconds_per_2k"], 3)})
    ratios = {}
    for column in ("train_ratio", "val_ratio"):
        values = [r[column] for r in references]
        ratios[column] = round(math.exp(statistics.mean(math.log(v) for v in values)), 3)
        ratios[column.replace("ratio", "spread")] = [min(values), max(values)]
    return {"references": references, **ratios}


def scaled(record: dict, scale: dict) -> dict:
    """``record`` on the stored file's scale: its seconds times the references' ratios, the raw ones kept."""
    return {**record, "measured_seconds_per_20k": record["seconds_per_20k"],
            "measured_val_seconds_per_2k": record["val_seconds_per_2k"],
            "seconds_per_20k": round(record["seconds_per_20k"] * scale["train_ratio"], 1),
            "val_seconds_per_2k": round(record["val_seconds_per_2k"] * scale["val_ratio"], 2),
            "scaled_to_stored": scale}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-runs", nargs="*", default=[], type=Path,
                        help="folders holding finished cpu runs (e.g. results/0*/runs): their epochs give "
                             "the training seconds; pairs without runs are probed")
    parser.add_argument("--only", nargs="*", help="tasks to measure (default: all); others keep their stored value")
    parser.add_argument("--models", nargs="*", help="models to measure (default: all); others keep their stored value")
    parser.add_argument("--sides", nargs="*", type=int, help="canvas sides to measure (default: all), e.g. 1500 1000 "
                                                             "for 06; others keep their stored value")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(study.CALIBRATION_FILE), help="default: the file study reads")
    parser.add_argument("--reference", nargs="*", default=[], type=parse_reference, metavar="TASK:SIDE:NAME",
                        help="stored pairs to measure again first: what is measured is scaled by stored / measured "
                             "(today's machine put on the stored file's scale); the references keep their entries")
    args = parser.parse_args()

    out = Path(args.out)

    def chosen(task: str, model: str, side: int) -> bool:
        return ((not args.only or task in args.only) and (not args.models or model in args.models)
                and (not args.sides or side in args.sides))

    stored = json.loads(out.read_text())["probes"] if out.exists() else []
    kept = []
    if args.only or args.models or args.sides:
        kept = [r for r in stored if not chosen(r["task"], r["model"], r["canvas"])]
    if any(chosen(task, name, side) for task, side, name in args.reference):
        raise SystemExit("a --reference pair is also among those measured: it must keep its stored entry; "
                         "narrow --only, --models or --sides to the new pairs")
    if args.reference and args.from_runs:
        raise SystemExit("--reference scales what today's machine measures; --from-runs reads runs of other "
                         "days: give one of them")
    run_folders = [run for parent in args.from_runs for run in sorted(parent.iterdir()) if run.is_dir()]
    measured = from_runs(run_folders)
    started = time.perf_counter()
    probes = []
    # the two-digit pairs by model name; 06's by run name (its model, settings and data given)
    pairs = [(task, canvas, model, model, None, None, canvases) for task, canvas, model, canvases in PROBES]
    pairs += resolution_probes()
    scale = None
    if args.reference:  # probed, never read from runs: today's machine, as the new pairs are measured
        known = {(task, canvas, name): (task, canvas, name, *rest) for task, canvas, name, *rest in pairs}
        missing = [ref for ref in args.reference if ref not in known]
        if missing:
            raise SystemExit(f"--reference {':'.join(map(str, missing[0]))} is not a pair this probe measures")
        scale = speed_ratios(stored, [measure_pair(*known[ref], args.threads) for ref in args.reference])
        print(f"today's seconds times {scale['train_ratio']} (training) and {scale['val_ratio']} (validation) "
              f"put them on the stored file's scale", flush=True)
    for task, canvas, name, model, settings, data, canvases in pairs:
        if not chosen(task, name, canvas):
            continue
        record = measure_pair(task, canvas, name, model, settings, data, canvases, args.threads,
                              None if scale else measured.get((task, canvas, name)))
        if scale:
            record = scaled(record, scale)
        meta = run_metadata("cpu")  # per pair: a partial rerun leaves the others' provenance in place
        record.update({"time_utc": meta["time_utc"], "git_commit": meta["git_commit"]})
        print(f"{task:15s} {canvas:5d}  {model:16s} train {record['seconds_per_20k']} s per 20k "
              f"({record['train_source']}), validation {record['val_seconds_per_2k']} s per 2k", flush=True)
        probes.append(record)
    write_json(out, {"what": "seconds per epoch (batch 128, fp32, shared loop): training on 20,000 canvases "
                             "(seconds_per_20k) and scoring 2,000 validation canvases (val_seconds_per_2k)",
                     "command": " ".join(["python scripts/probes/epoch_seconds.py", *sys.argv[1:]]),  # the last run's
                     "threads": args.threads, **run_metadata("cpu"),
                     "wall_s": round(time.perf_counter() - started, 1), "probes": kept + probes})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
