"""Probe: what RAM's two retinas cost and how far apart their patches are (docs/baselines.md,
baselines.RAMConfig.retina). On one thread, batch 128 of 100² canvases: a training step's time for RAM's
own retina (3 scales of 12-48 px) and for the wide one (4 scales of 16-128 px), supersampled and read from
the pyramid; then on 128 sum test canvases at random locations, the mean absolute difference of the
pyramid's patches from the supersampled ones relative to the supersampled patches' mean, per scale.
Written to records/ram_probes/retina.json with the run's metadata. Nothing else may run meanwhile.

    .venv/bin/python scripts/probes/ram_retina.py
"""
import time
from pathlib import Path

import torch

from saccadelib.baselines.ram import RAM, RAMConfig
from saccadelib.datasets.twodigit import eval_set
from saccadelib.runinfo import run_metadata, write_json
from saccadelib.sources import TensorSource

OUT = Path(__file__).resolve().parents[2] / "records" / "ram_probes" / "retina.json"
BATCH, STEPS = 128, 5
WIDE = {"patch": 16, "patch_fraction": 0.16, "scales": 4}
RETINAS = {"own": {}, "wide": WIDE}


def step_ms(cfg: RAMConfig, images: torch.Tensor) -> float:
    """Mean time of a training step (forward, loss, backward), after one step of warm-up."""
    model = RAM(cfg).train()
    batch = {"image": images, "label": torch.randint(0, cfg.n_classes, (BATCH,))}
    model.training_loss(batch)[0].backward()
    started = time.perf_counter()
    for _ in range(STEPS):
        model.training_loss(batch)[0].backward()
    return round(1000 * (time.perf_counter() - started) / STEPS, 1)


def patch_difference(settings: dict, images: torch.Tensor) -> list[float]:
    """Per scale: mean |pyramid patch − supersampled patch| / mean |supersampled patch|."""
    supersampled = RAM(RAMConfig(n_classes=19, **settings))
    pyramid = RAM(RAMConfig(n_classes=19, retina="pyramid", **settings))
    source, location = TensorSource(images), torch.rand(BATCH, 2) * 2 - 1
    side = supersampled.cfg.patch ** 2
    a = supersampled.retina(supersampled.retina_levels(source), location).view(BATCH, -1, side)
    b = pyramid.retina(pyramid.retina_levels(source), location).view(BATCH, -1, side)
    return [round(d, 3) for d in ((a - b).abs().mean((0, 2)) / a.abs().mean((0, 2)).clamp_min(1e-6)).tolist()]


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    noise = torch.rand(BATCH, 1, 100, 100)
    canvases = eval_set("sum", "test").as_dict(0, BATCH)["image"]
    rows = []
    for name, settings in RETINAS.items():
        times = {retina: step_ms(RAMConfig(n_classes=19, retina=retina, **settings), noise)
                 for retina in ("supersample", "pyramid")}
        rows.append({"retina": name, "settings": settings, "step_ms": times,
                     "pyramid_speedup": round(times["supersample"] / times["pyramid"], 1),
                     "patch_difference_by_scale": patch_difference(settings, canvases)})
        print(rows[-1])
    write_json(OUT, {"probe": "ram_retina", "command": "python scripts/probes/ram_retina.py", "batch": BATCH,
                     "steps": STEPS, "threads": 1, **run_metadata("cpu"), "rows": rows})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
