"""Probe: is RAM's failure on sum 100² its policy or its glimpse/core/classifier pathway?

RAM trained through the shared loop stays at the label prior on sum 100² (records/baselines/sum_ram_cpu30,
results/01_two_digit_sum). Here its glimpse network, core LSTM and classifier (the model's own modules, at
the study's RAMConfig) are trained with the classification loss alone, with the locations *given*:

- ``oracle``: glimpses alternate between the two digits' centres (from the canvas boxes);
- ``random``: six uniform locations per canvas;
- ``centre``: every glimpse at the image centre.

If ``oracle`` learns and the others do not, the pathway is sound and what RAM lacks at our budget is a
policy that finds the digits, which REINFORCE cannot learn before the classifier rewards it.

    .venv/bin/python scripts/probes/ram_locations.py        # about 2 minutes on 2 cores
"""
import argparse
import csv
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from saccadelib import baselines
from saccadelib.sources import TensorSource
from saccadelib.datasets.twodigit import eval_set
from saccadelib.paths import REPO_ROOT, atomic_path
from saccadelib.runinfo import run_metadata, write_json
from saccadelib.registry import build, config_for
from saccadelib.tasks import get_task
from saccadelib.train import seed_everything

ARMS = ("oracle", "random", "centre")
VAL = 2000  # validation canvases scored per arm


def locations(arm: str, batch: dict, glimpses: int, generator: torch.Generator) -> torch.Tensor:
    """[N, T, 2] glimpse centres in [-1, 1] (align_corners=False pixel centres)."""
    n, side = batch["image"].shape[0], batch["image"].shape[-1]
    if arm == "oracle":
        centres = (batch["boxes"][..., :2] + batch["boxes"][..., 2:]) / 2  # [N, 2 digits, (x, y)] pixels
        digits = (centres / side) * 2 - 1
        return digits[:, torch.arange(glimpses) % 2]
    if arm == "random":
        return torch.rand(n, glimpses, 2, generator=generator) * 2 - 1
    return torch.zeros(n, glimpses, 2)


def logits(model: baselines.RAM, images: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """RAM's forward with the locations given instead of drawn from its policy."""
    src = TensorSource(images)
    n, hidden = images.shape[0], model.cfg.hidden
    state = (images.new_zeros(n, hidden), images.new_zeros(n, hidden))
    for t in range(where.shape[1]):
        loc = where[:, t]
        state = model.core(model.glimpse(torch.cat([model.what(model.retina(model.retina_levels(src), loc)), model.where(loc)], -1)), state)
    return model.classifier(state[0])


def run_arm(arm: str, steps: int, batch_size: int, seed: int) -> tuple[list[dict], float]:
    seed_everything(seed)
    model = build("ram", config_for("ram", 19))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(seed)
    stream = get_task("sum").training_stream(steps * batch_size, batch_size, seed)
    curve = []
    for step, batch in enumerate(stream, 1):
        out = logits(model, batch["image"], locations(arm, batch, model.cfg.glimpses, generator))
        loss = F.cross_entropy(out, batch["label"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        curve.append({"arm": arm, "step": step, "canvases": step * batch_size, "loss": round(loss.item(), 4),
                      "batch_accuracy": round((out.argmax(-1) == batch["label"]).float().mean().item(), 4)})
    batch = eval_set("sum", "val").as_dict(0, VAL)
    model.eval()
    with torch.no_grad():
        where = locations(arm, batch, model.cfg.glimpses, torch.Generator().manual_seed(seed + 1))
        accuracy = (logits(model, batch["image"], where).argmax(-1) == batch["label"]).float().mean().item()
    return curve, accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO_ROOT / "records" / "baselines" / "ram_location_probe"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows, summary = [], {}
    for arm in ARMS:
        curve, accuracy = run_arm(arm, args.steps, args.batch_size, args.seed)
        rows += curve
        last = curve[-40:]
        summary[arm] = {"val_accuracy": round(accuracy, 4),
                        "last_40_steps_loss": round(sum(r["loss"] for r in last) / len(last), 4)}
        print(f"{arm:7s} val accuracy {accuracy:.3f}  loss (last 40 steps) {summary[arm]['last_40_steps_loss']:.3f}",
              flush=True)
    with atomic_path(out / "curves.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_json(out / "summary.json", {
        "what": "RAM's glimpse network, core and classifier trained on sum 100² with given locations, "
                "classification loss only (no policy); val accuracy on the first 2,000 validation canvases",
        "label_prior_accuracy": round(float(torch.bincount(eval_set("sum", "val").label[:VAL]).max()) / VAL, 4),
        "arms": summary, "steps": args.steps, "batch_size": args.batch_size, "seed": args.seed, "lr": 1e-3,
        "ram_config": config_for("ram", 19).to_dict(),
        "command": f"python scripts/probes/ram_locations.py --steps {args.steps} --seed {args.seed}",
        "wall_s": round(time.perf_counter() - started, 1), "run": run_metadata(torch.device("cpu"))})


if __name__ == "__main__":
    main()
