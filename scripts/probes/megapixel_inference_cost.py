"""Probe: inference cost per image on Megapixel MNIST, end to end from a 1500² PNG of the test set (the
file decoded and read as each model reads it), batch 1, 2 threads, each model in a fresh process
(``saccadelib.bench.cost``): our model with the 06 recipe, the proxy-only CNN at the same 128² proxy,
attention sampling with its paper's view, IPS with its paper's encoder (ResNet-18 through its second
stage) and with the small CPU encoder, and ResNet-18 on a 500² downsample. Weights are fixed and
random: the cost does not depend on them (our model's windows keep its recipe's sizes). Writes
records/megapixel_target/inference_cost.{json,md}; nothing else may run meanwhile.

    .venv/bin/python scripts/probes/megapixel_inference_cost.py   # about 5 minutes
"""
import json
from pathlib import Path

from saccadelib.bench.cost import measure
from saccadelib.datasets.megapixel_png import export_png
from saccadelib.paths import data_dir, write_text_atomic
from saccadelib.runinfo import run_metadata
from saccadelib.study.profiles import resolution_study
from saccadelib.study.experiments import resolution_entries

# the settings experiment 06 trains these models with on Megapixel MNIST, and the whole-image CNN
SIXTH = {name: (model, settings) for task, _, name, model, settings in resolution_entries(resolution_study("cpu"))
         if task == "megapixel_majority"}
MODELS = {
    "saccade_cells (06 recipe)": SIXTH["saccade_cells"],
    "proxy_cnn 128²": SIXTH["proxy_cnn"],
    "attention_sampling": SIXTH["attention_sampling"],
    "IPS, its paper's encoder (ResNet-18, 2 stages)": ("ips", {"encoder": "resnet18_2stages"}),
    "IPS, small CPU encoder": ("ips", {"encoder": "small"}),
    "resnet18 on a 500² downsample": ("resnet18_downsampled", {"input_side": 500}),
}
out = Path("records/megapixel_target")
folder = data_dir() / "megapixel_png" / "test"
image = folder / "00000.png"
if not image.exists():
    export_png("test", folder, limit=1)
rows = []
for label, (model, config) in MODELS.items():
    spec = {"model": model, "config": config, "task": "megapixel_majority", "side": 1500, "source": "file",
            "file": str(image), "phase": "infer", "batch": 1, "threads": 2, "repeats": 10, "warmup": 2}
    row = measure(spec, timeout_s=900)
    row["label"] = label
    row["work_mib"] = round(row["peak_rss_mib"] - row["base_rss_mib"], 1)
    rows.append(row)
    print(f"{label:32s} {row['median_s'] * 1000:8.1f} ms  work memory {row['work_mib']:7.1f} MiB  "
          f"{row['parameters'] / 1e6:.2f} M parameters")
ours = rows[0]["median_s"]
lines = ["| model | ms per image | × ours | work memory (MiB) | peak RSS (MiB) | parameters |", "|---|---|---|---|---|---|"]
for row in rows:
    lines.append(f"| {row['label']} | {row['median_s'] * 1000:.1f} | {row['median_s'] / ours:.1f} | {row['work_mib']:.0f} | "
                 f"{row['peak_rss_mib']:.0f} | {row['parameters'] / 1e6:.2f} M |")
run = run_metadata("cpu")
lines += ["", f"Batch 1 from a 1500² PNG of the Megapixel MNIST test set, median of 10 after 2 warm-ups, 2 threads, "
              f"each model in a fresh process; commit {run['git_commit']}, {run['device_name']}. Command: "
              "`.venv/bin/python scripts/probes/megapixel_inference_cost.py`."]
out.mkdir(parents=True, exist_ok=True)
write_text_atomic(out / "inference_cost.json", json.dumps({"rows": rows, "run": run}, indent=1) + "\n")
write_text_atomic(out / "inference_cost.md", "\n".join(lines) + "\n")
print("\n".join(lines))
