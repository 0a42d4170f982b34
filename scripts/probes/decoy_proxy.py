"""Probe: how decoys look beside digits, on the stored decoy sets' validation canvases.

For each digit and each decoy box of the first ``--canvases`` validation canvases: its ink at full
resolution (the box's pixel values summed, in pixels of full ink: a box holds its digit or decoy alone,
pasted over whatever lay there), the brightest pixel of the 128² proxy over the box, and the box's ink as
the ink prior weighs it (the sum over the proxy pixels the box touches of p⁴, ``ink_power`` 4). Also the
share of canvases where every decoy outranks every digit by its brightest proxy pixel. Writes
records/megapixel_decoys/proxy.{json,md}.

    .venv/bin/python scripts/probes/decoy_proxy.py   # needs `data megapixel --decoys blobs` and `lookalikes`
"""
import argparse
import math
import time

import numpy as np
import torch

from saccadelib.datasets import megapixel
from saccadelib.paths import REPO_ROOT, write_text_atomic
from saccadelib.runinfo import run_metadata, write_json

PROXY, POWER = 128, 4


def box_view(proxy: torch.Tensor, boxes: torch.Tensor, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(brightest proxy pixel, Σ p⁴) over each box [N, K, 4] of the proxies [N, P, P]: arrays [N, K]."""
    scale = proxy.shape[-1] / side
    bright, ink = np.zeros(boxes.shape[:2]), np.zeros(boxes.shape[:2])
    for i in range(len(boxes)):
        for k, (x0, y0, x1, y1) in enumerate((boxes[i] * scale).tolist()):
            cells = proxy[i, int(y0):math.ceil(y1), int(x0):math.ceil(x1)]
            bright[i, k], ink[i, k] = float(cells.max()), float((cells ** POWER).sum())
    return bright, ink


def full_ink(images, boxes: torch.Tensor) -> np.ndarray:
    """[N, K] each box's pixel values summed over 255 (pixels of full ink), from the full-resolution canvases."""
    ink = np.zeros(boxes.shape[:2])
    for i in range(len(boxes)):
        canvas = images[i:i + 1].dense()[0].double() / 255
        for k, (x0, y0, x1, y1) in enumerate(boxes[i].long().tolist()):
            ink[i, k] = float(canvas[y0:y1, x0:x1].sum())
    return ink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvases", type=int, default=200)
    args = parser.parse_args()
    start, rows = time.time(), []
    for kind in ("blobs", "lookalikes"):
        data = megapixel.load("val", megapixel.default_root(megapixel.MegapixelConfig(decoys=kind)))
        part = data.as_dict(0, args.canvases)
        proxy = part["image"].proxy(PROXY)[:, 0]
        side = data.config.side
        (digit_bright, digit_ink), (decoy_bright, decoy_ink) = (box_view(proxy, b, side) for b in
                                                                (part["boxes"], part["decoy_boxes"]))
        outranked = (decoy_bright.min(1) > digit_bright.max(1)).mean()
        digit_full, decoy_full = (full_ink(data.images, b) for b in (part["boxes"], part["decoy_boxes"]))
        rows.append({"decoys": kind, "canvases": len(proxy),
                     "digit_full_ink_min_p50_max": np.percentile(digit_full, [0, 50, 100]).round(1).tolist(),
                     "decoy_full_ink_min_p50_max": np.percentile(decoy_full, [0, 50, 100]).round(1).tolist(),
                     "digit_brightest_p10_p50_p90": np.percentile(digit_bright, [10, 50, 90]).round(3).tolist(),
                     "decoy_brightest_p10_p50_p90": np.percentile(decoy_bright, [10, 50, 90]).round(3).tolist(),
                     "digit_brightest_max": round(float(digit_bright.max()), 3),
                     "decoy_brightest_min": round(float(decoy_bright.min()), 3),
                     "digit_ink4_mean": round(float(digit_ink.mean()), 4), "decoy_ink4_mean": round(float(decoy_ink.mean()), 4),
                     "every_decoy_brighter_than_every_digit": round(float(outranked), 4)})
    out = REPO_ROOT / "records" / "megapixel_decoys"
    write_json(out / "proxy.json", {**run_metadata(), "wall_s": round(time.time() - start, 1), "proxy": PROXY,
                                    "ink_power": POWER, "rows": rows})
    lines = [f"Decoys in the {PROXY}² proxy beside digits, first {args.canvases} validation canvases "
             "(`.venv/bin/python scripts/probes/decoy_proxy.py`)", "",
             "| decoys | full ink of a digit, px (min, median, max) | of a decoy | brightest proxy pixel over a digit "
             "(p10, p50, p90; max) | over a decoy (p10, p50, p90; min) | Σ p⁴ per digit | per decoy | canvases where "
             "every decoy is brighter than every digit |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['decoys']} | {r['digit_full_ink_min_p50_max']} | {r['decoy_full_ink_min_p50_max']} | "
                     f"{r['digit_brightest_p10_p50_p90']}; {r['digit_brightest_max']} | "
                     f"{r['decoy_brightest_p10_p50_p90']}; {r['decoy_brightest_min']} | {r['digit_ink4_mean']} | "
                     f"{r['decoy_ink4_mean']} | {100 * r['every_decoy_brighter_than_every_digit']:.1f}% |")
    write_text_atomic(out / "proxy.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
