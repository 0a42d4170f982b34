"""What a model's windows look like on a set whose objects' boxes are known: how large each glimpse's
window is, the detail its crop reads it at, how close it lands to an object and whether it frames one.

A learnt window can find both digits and still read them coarsely: a 45-px window read into a 32² crop
shows a digit at 0.71 crop pixels per canvas pixel where a window on the 28-px digit box shows it at
1.14. These numbers tell a policy that reads coarsely from one that does not find.

- ``side_px``: the window's side in canvas pixels (the grid the objects were drawn on; for the lazy
  upsample of a 100² canvas, its 100² grid). Mean and the 10th, 50th and 90th percentiles.
- ``detail``: crop pixels per canvas pixel, the crop's side over the window's (mean over windows).
- ``at_cap``: the share of windows within 0.5% of the side of the largest window the model may learn
  (only for learnt window sizes; None otherwise).
- ``centre_to_object_px``: the distance from the window's centre to the nearest object's centre.
- ``strict_hit``: the share of windows that frame an object: its box wholly inside a window at most
  ``STRICT_SIDE`` times the box's side. Beside it the loose hit of ``hit_rate`` (more than half of a box
  inside a window of any size).
- ``all_strictly_held``: the share of canvases where every object is framed by some glimpse.
- ``centre_spread_px``: how far a glimpse's window moves from canvas to canvas: the root-mean-square
  distance of its centre from that glimpse's mean centre over the set (0 for a fixed tiling; over all
  glimpses, the mean of the glimpses').
- ``on_object`` and, on a set with decoys, ``on_decoy``: the share of windows that hold more than half of
  an object's (a decoy's) box, by the loose hit.
"""
from __future__ import annotations

import torch

from .sampler import window_to_box

STRICT_SIDE = 1.5  # a window frames an object when it holds its whole box and is at most 1.5× the box's side
AT_CAP = 0.005  # a window within this share of the image side of the largest allowed is "at the cap"
INSIDE = 1e-3  # canvas pixels of slack for a box edge on a window edge (a window on the box itself)


HIT_COVERAGE = 0.5  # a glimpse hits a digit when its window holds more than this share of the digit's box


def box_coverage(windows: torch.Tensor, boxes: torch.Tensor, canvas: int) -> torch.Tensor:
    """[N, T, D]: the share of each object's box (boxes [N, D, 4], canvas pixels) inside each window."""
    win = window_to_box(windows, canvas, canvas).unsqueeze(2)  # [N, T, 1, 4]
    obj = boxes.to(win.dtype).unsqueeze(1)  # [N, 1, D, 4]
    overlap = ((torch.minimum(win[..., 2:], obj[..., 2:]) - torch.maximum(win[..., :2], obj[..., :2]))
               .clamp(min=0).prod(-1))
    return overlap / (obj[..., 2:] - obj[..., :2]).prod(-1)


def hit_matrix(windows: torch.Tensor, boxes: torch.Tensor, canvas: int) -> torch.Tensor:
    """[N, T, D] bool: glimpse t's window holds more than half of object d's box."""
    return box_coverage(windows, boxes, canvas) > HIT_COVERAGE


def reading(model) -> tuple[int | None, float | None]:
    """(crop side in pixels, the largest window it may learn or None) of a glimpse model, from its config:
    ``crop_size`` or a retina's ``patch``, and the window cap where the window's side is learnt."""
    cfg = getattr(model, "cfg", None)
    crop = getattr(cfg, "crop_size", None) or getattr(cfg, "patch", None)
    window = getattr(cfg, "window", None)
    learnt = getattr(cfg, "policy", None) == "learnt" and getattr(window, "mode", None) == "learnt"
    return crop, (window.final_cap if learnt else None)


def _quantiles(values: torch.Tensor) -> dict:
    q = torch.quantile(values.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.double))
    return {"mean": round(values.double().mean().item(), 2), "p10": round(q[0].item(), 2),
            "p50": round(q[1].item(), 2), "p90": round(q[2].item(), 2)}


def frames(windows: torch.Tensor, boxes: torch.Tensor, side: int) -> torch.Tensor:
    """[N, T, D] bool: window t frames object d (its box wholly inside, the window ≤ STRICT_SIDE × the box)."""
    win = window_to_box(windows.double(), side, side).unsqueeze(2)  # [N, T, 1, 4]
    obj = boxes.double().unsqueeze(1)  # [N, 1, D, 4]
    inside = ((win[..., :2] <= obj[..., :2] + INSIDE) & (win[..., 2:] >= obj[..., 2:] - INSIDE)).all(-1)
    box_side = (obj[..., 2:] - obj[..., :2]).amax(-1)
    return inside & (windows[..., :1].double() * side <= STRICT_SIDE * box_side + INSIDE)


def window_statistics(windows: torch.Tensor, boxes: torch.Tensor, side: int, crop: int | None = None,
                      cap: float | None = None, decoys: torch.Tensor | None = None) -> dict:
    """The statistics above for windows [N, T, 3] (scale, cx, cy) and object boxes [N, D, 4] (x0, y0, x1, y1
    in pixels of a ``side``² canvas), per glimpse step (lists of length T) and over all glimpses; ``decoys``
    [N, K, 4]: the boxes of shapes that are not objects, where the set has them."""
    windows, boxes = windows.detach().cpu().double(), boxes.detach().cpu().double()
    side_px = windows[..., 0] * side  # [N, T]
    centre = (windows[..., 1:] + 1) / 2 * side  # [N, T, 2]
    object_centre = (boxes[..., :2] + boxes[..., 2:]) / 2  # [N, D, 2]
    distance = (centre.unsqueeze(2) - object_centre.unsqueeze(1)).norm(dim=-1).amin(-1)  # [N, T]
    spread = (centre - centre.mean(0)).square().sum(-1).mean(0).sqrt()  # [T]
    framed = frames(windows, boxes, side)  # [N, T, D]
    on = {"on_object": hit_matrix(windows, boxes, side).any(-1)}  # [N, T]
    if decoys is not None:
        on["on_decoy"] = hit_matrix(windows, decoys.detach().cpu().double(), side).any(-1)
    steps = range(windows.shape[1])

    def summary(index) -> dict:
        sides = side_px[:, index].reshape(-1)
        out = {"side_px": _quantiles(sides),
               "detail": None if crop is None else round((crop / sides).mean().item(), 3),
               "at_cap": None if cap is None else
               round((windows[:, index, 0].reshape(-1) >= cap - AT_CAP).double().mean().item(), 4),
               "centre_to_object_px": _quantiles(distance[:, index].reshape(-1)),
               "centre_spread_px": round(spread[index].mean().item(), 2),
               "strict_hit": round(framed[:, index].any(-1).double().mean().item(), 4),
               **{name: round(held[:, index].double().mean().item(), 4) for name, held in on.items()}}
        return out

    return {"steps": [summary(t) for t in steps], "all": summary(slice(None)),
            "all_strictly_held": round(framed.any(1).all(-1).double().mean().item(), 4),
            "crop": crop, "cap": cap, "side": side, "strict_side": STRICT_SIDE}
