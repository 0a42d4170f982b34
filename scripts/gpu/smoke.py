"""GPU smoke check: every registered model does one bf16 training step and one evaluation on the GPU.

Prints one line per model (step time, peak allocated memory) and exits non-zero on the first failure,
so a long GPU command stops before it spends its time. ``--tiles-batch N`` also tries one naive training
step of the 144-tile ResNet-18 at N images and prints whether it fits.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from saccadelib.datasets import twodigit
from saccadelib.registry import REGISTRY, build, config_for
from saccadelib.sources import UpsampledSource
from saccadelib.tasks import n_classes
from saccadelib.evaluation import autocast, to_device


def step(name: str, overrides: dict, batch_size: int, device: torch.device,
         image_side: int | None = None) -> tuple[float, float]:
    model = build(name, config_for(name, n_classes("identification"), overrides)).to(device)
    batch = twodigit.make_two_digit("identification", "train", batch_size, 0)
    if image_side:
        batch["image"] = UpsampledSource(batch["image"], image_side)
    batch = to_device(batch, device)
    torch.cuda.reset_peak_memory_stats(device)
    torch.cuda.synchronize(device)
    tick = time.perf_counter()
    model.train()
    with autocast(device, "bf16"):
        loss, _ = model.training_loss(batch)
    loss.backward()
    model.eval()
    with autocast(device, "bf16"):
        out = model.evaluate_batch(batch)
    assert out["logits"].shape == (batch_size, 55), out["logits"].shape
    assert torch.isfinite(loss), loss
    torch.cuda.synchronize(device)
    return time.perf_counter() - tick, torch.cuda.max_memory_allocated(device) / 2**30


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles-batch", type=int, default=0)
    args = parser.parse_args()
    device = torch.device("cuda")
    print(torch.__version__, torch.cuda.get_device_name(device), flush=True)
    for name in REGISTRY:
        side = 2528 if name in ("saccade", "random_glimpses", "grid_glimpses", "ram") else None
        overrides = {"chunk_tiles": 36} if name == "resnet18_tiles" else {}
        seconds, gib = step(name, overrides, 2, device, side)
        print(f"ok {name:16s} step+eval {seconds:6.2f} s  peak {gib:6.2f} GiB", flush=True)
    if args.tiles_batch:
        for checkpoint in (False, True):
            try:
                seconds, gib = step("resnet18_tiles", {"chunk_tiles": 144, "checkpoint": checkpoint},
                                    args.tiles_batch, device)
                print(f"tiles batch {args.tiles_batch} checkpoint={checkpoint}: {seconds:.2f} s, peak {gib:.1f} GiB", flush=True)
            except torch.OutOfMemoryError:
                print(f"tiles batch {args.tiles_batch} checkpoint={checkpoint}: out of memory", flush=True)
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
