"""Probe: on our 2 cores, does one run on two threads, or two runs side by side on one thread each, train
more canvases per hour?

For each model, the epoch-time probe (``epoch_seconds.py``: two short training epochs through the shared
loop, then validation scored twice) runs once alone on 2 threads, then twice at the same time on 1 thread
each. The throughput ratio is 2 × (seconds alone) / (mean seconds side by side): above 1, two runners on one
thread each get more done (``reproduce --threads 1``, docs/study.md). Nothing else may run meanwhile.

    .venv/bin/python scripts/probes/thread_share.py --out records/machine_speed/threads.json   # about 10 min
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from saccadelib.runinfo import run_metadata, write_json

PROBE = Path(__file__).with_name("epoch_seconds.py")


def probe(task: str, side: int, model: str, threads: int, copies: int, work: Path) -> list[dict]:
    """The epoch-time probe's entry for (task, side, model), from ``copies`` processes started together."""
    outs = [work / f"{model}_t{threads}_{i}.json" for i in range(copies)]
    processes = [subprocess.Popen([sys.executable, str(PROBE), "--only", task, "--models", model, "--sides",
                                   str(side), "--threads", str(threads), "--out", str(out)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for out in outs]
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"epoch_seconds.py failed for {model}: {err.strip().splitlines()[-1]}")
    entries = []
    for out in outs:
        probes = json.loads(out.read_text())["probes"]
        entries.append(next(p for p in probes if (p["task"], p["canvas"], p["model"]) == (task, side, model)))
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sum")
    parser.add_argument("--side", type=int, default=100)
    parser.add_argument("--models", nargs="+", default=["saccade", "ram", "oracle_glimpses", "proxy_cnn"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            alone = probe(args.task, args.side, model, threads=2, copies=1, work=Path(tmp))[0]
            pair = probe(args.task, args.side, model, threads=1, copies=2, work=Path(tmp))
            side_by_side = sum(p["seconds_per_20k"] for p in pair) / 2
            val_side_by_side = sum(p["val_seconds_per_2k"] for p in pair) / 2
            rows.append({"model": model, "alone_2_threads_s_per_20k": alone["seconds_per_20k"],
                         "side_by_side_1_thread_s_per_20k": [p["seconds_per_20k"] for p in pair],
                         "training_throughput_ratio": round(2 * alone["seconds_per_20k"] / side_by_side, 2),
                         "alone_2_threads_val_s_per_2k": alone["val_seconds_per_2k"],
                         "side_by_side_1_thread_val_s_per_2k": [p["val_seconds_per_2k"] for p in pair],
                         "validation_throughput_ratio": round(2 * alone["val_seconds_per_2k"] / val_side_by_side, 2)})
            print(json.dumps(rows[-1]), flush=True)
    write_json(Path(args.out), {"what": "canvases per hour of two runs side by side on 1 thread each over one run "
                                        "on 2 threads (ratio > 1: side by side gets more done), per model",
                                "command": "python scripts/probes/thread_share.py " + " ".join(sys.argv[1:]),
                                "task": args.task, "side": args.side, "models": rows,
                                "wall_s": round(time.perf_counter() - started, 1), **run_metadata("cpu")})


if __name__ == "__main__":
    main()
