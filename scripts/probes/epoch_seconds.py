"""Probe: training seconds per epoch of 20,000 canvases for every (task, canvas, model) of the cpu profile.

The cpu profile gives each model the same minutes and turns them into a fixed number of epochs with
these numbers (``saccadelib.study.EPOCH_SECONDS``, read from ``results/benchmarks/epoch_seconds.json``),
so a run's result does not depend on what else shares the CPU. Each probe trains two short epochs
through the shared loop (same settings as the study: recipe, batch size, 2 threads) and keeps the
faster one, scaled to 20,000 canvases; nothing else may run on the machine meanwhile.

    .venv/bin/python scripts/probes/epoch_seconds.py            # about 8 minutes on 2 cores
    .venv/bin/python scripts/probes/epoch_seconds.py --only sum  # one task
    .venv/bin/python scripts/probes/epoch_seconds.py --only sum --models saccade random_glimpses  # some models
"""
import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from saccadelib import study
from saccadelib.experiment import train_model
from saccadelib.runinfo import run_metadata, write_json

# (task, canvas, model, canvases per probe epoch): about 10-30 s an epoch each
PROBES = [("sum", 100, m, n) for m, n in [("saccade", 6000), ("random_glimpses", 6000), ("grid_glimpses", 6000),
                                         ("proxy_cnn", 12000), ("ram", 12000), ("resnet18", 1500)]] + \
         [("identification", 100, m, n) for m, n in [("saccade", 4000), ("random_glimpses", 4000),
                                                    ("grid_glimpses", 4000), ("proxy_cnn", 12000),
                                                    ("ram", 12000), ("resnet18", 1500)]] + \
         [("identification", study.LARGE_SIDE, m, 1500) for m in ("saccade", "random_glimpses")]


def probe(task: str, canvas: int, model: str, canvases: int, threads: int) -> dict:
    training = study.Training(budget_min=None, epochs=2, train_size=canvases, val_size=200, test_size=200,
                              threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        train_model(model, task, tmp, study.model_overrides(task, model, canvas),
                    study.train_overrides(task, canvas, model, training, seed=0))
        with open(Path(tmp) / "history.csv") as f:
            epochs = [float(row["train_s"]) for row in csv.DictReader(f)]
    return {"task": task, "canvas": canvas, "model": model, "probe_canvases": canvases, "epoch_train_s": epochs,
            "seconds_per_20k": round(min(epochs) * 20_000 / canvases, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="tasks to probe (default: all); others keep their stored value")
    parser.add_argument("--models", nargs="*", help="models to probe (default: all); others keep their stored value")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(study.EPOCH_SECONDS_FILE), help="default: the file study reads")
    args = parser.parse_args()

    out = Path(args.out)

    def chosen(task: str, model: str) -> bool:
        return (not args.only or task in args.only) and (not args.models or model in args.models)

    kept = []
    if (args.only or args.models) and out.exists():
        kept = [r for r in json.loads(out.read_text())["probes"] if not chosen(r["task"], r["model"])]
    started = time.perf_counter()
    probes = []
    for task, canvas, model, canvases in PROBES:
        if not chosen(task, model):
            continue
        record = probe(task, canvas, model, canvases, args.threads)
        meta = run_metadata("cpu")  # per probe: a partial rerun leaves the others' provenance in place
        record.update({"time_utc": meta["time_utc"], "git_commit": meta["git_commit"]})
        print(f"{task:15s} {canvas:5d}  {model:16s} {record['epoch_train_s']} s for {canvases} canvases "
              f"-> {record['seconds_per_20k']} s per 20k", flush=True)
        probes.append(record)
    write_json(out, {"what": "training seconds per epoch of 20,000 canvases (batch 128, fp32), shared loop",
                     "command": "python scripts/probes/epoch_seconds.py", "threads": args.threads,
                     **run_metadata("cpu"),
                     "wall_s": round(time.perf_counter() - started, 1), "probes": kept + probes})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
