"""Probe: the share of a Megapixel MNIST canvas's ink that lies in its digits' boxes (validation split),
the chance that a look drawn where the ink is lands on a digit (docs/resolution.md).

    .venv/bin/python scripts/probes/megapixel_ink.py
"""
import torch

from saccadelib.datasets import megapixel

data = megapixel.load("val")
side = data.config.side
index, values = data.images.index.long(), data.images.values.double()
used = index < side * side
y, x = index // side, index % side
in_box = torch.zeros_like(used)
for d in range(megapixel.DIGITS):
    x0, y0 = data.boxes[:, d, 0].long()[:, None], data.boxes[:, d, 1].long()[:, None]
    in_box |= (x >= x0) & (x < x0 + megapixel.DIGIT) & (y >= y0) & (y < y0 + megapixel.DIGIT)
share = ((values * (in_box & used)).sum(1) / (values * used).sum(1)).mean()
print(f"digits' share of the ink: {share:.3f}; digit pixels {(in_box & used & (values > 0)).sum(1).double().mean():.0f} "
      f"of {(used & (values > 0)).sum(1).double().mean():.0f} nonzero per canvas ({len(data)} canvases)")
