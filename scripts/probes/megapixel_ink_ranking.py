"""Probe: how often looks placed by an ink prior alone land on Megapixel MNIST's digits (and, on a decoy
set, on its decoys), for priors that weigh a proxy pixel p as p, p², p⁴ (validation split, a 128² proxy,
cells of 4 proxy pixels, six looks of a 0.04 window at the cells' ink centroids, each taking its 3×3 block
of cells out of later looks): the most probable cells (as in evaluation and the salient control) and cells
drawn from the prior (as in training, where the cells variant starts). See docs/resolution.md.

    .venv/bin/python scripts/probes/megapixel_ink_ranking.py [--canvases 500] [--decoys blobs|lookalikes]
"""
import argparse

import torch

from saccadelib.datasets import megapixel
from saccadelib.window_stats import hit_matrix
from saccadelib.model import cell_ink, draw_cells

parser = argparse.ArgumentParser()
parser.add_argument("--canvases", type=int, default=500)
parser.add_argument("--decoys", default="none", help="none (Megapixel MNIST), blobs or lookalikes (the decoy sets)")
args = parser.parse_args()
config = megapixel.MegapixelConfig(decoys=args.decoys)
data = megapixel.load("val", megapixel.default_root(config))
batch = data.as_dict(0, args.canvases)
proxy = batch["image"].proxy(128)
torch.manual_seed(0)
for power in (1, 2, 4):
    mass, centroid = cell_ink(proxy.clamp(min=0) ** power, 4)
    log_prior = (mass.flatten(1) + 1e-8).log().log_softmax(-1)
    for sample in (False, True):
        chosen, _ = draw_cells(log_prior, 6, side=mass.shape[-1], reach=1, sample=sample)
        centre = centroid.flatten(1, 2).gather(1, chosen.unsqueeze(-1).expand(-1, -1, 2))
        windows = torch.cat([torch.full_like(centre[..., :1], 0.04), centre], -1)
        hits = hit_matrix(windows, batch["boxes"], data.config.side)  # [N, T, 5]
        per_glimpse = hits.any(-1).float().mean(0)
        digits_seen = hits.any(1).float().sum(-1).mean()
        line = (f"ink p^{power}, {'drawn' if sample else 'most probable'}: hit rate per look "
                f"{' '.join(f'{v:.2f}' for v in per_glimpse.tolist())}; digits held by some look {digits_seen:.2f} of 5")
        if "decoy_boxes" in batch:
            on_decoy = hit_matrix(windows, batch["decoy_boxes"], data.config.side).any(-1).float()
            line += (f"; looks on a digit {hits.any(-1).float().mean():.1%}, on a decoy {on_decoy.mean():.1%}; "
                     f"canvases with 2+ digits seen {(hits.any(1).sum(-1) >= 2).float().mean():.1%}")
        print(line)
