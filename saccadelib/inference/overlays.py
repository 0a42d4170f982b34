"""Overlays: an image drawn with each glimpse's window, numbered, and the prediction as a title."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from ..sources import ImageSource


def draw_overlay(source: ImageSource, boxes: torch.Tensor, path: str | Path, title: str = "", max_side: int = 1024,
                 min_side: int = 512):
    """Save the image (shrunk to ``max_side``, or a small one enlarged to ``min_side`` with its pixels kept
    sharp) with each glimpse's window drawn and numbered."""
    longest = max(source.height, source.width)
    scale = max_side / longest if longest > max_side else max(1.0, min_side / longest)
    size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
    resample = Image.BILINEAR if scale <= 1 else Image.NEAREST
    # the source's own view at about the picture's size: a file's reduced decode, a pyramid's level that fits
    # the screen, an image in memory as it is, a lazy upsample through its anti-aliased view
    array = (source.overview(max(size))[:3].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).convert("RGB").resize(size, resample)
    pen = ImageDraw.Draw(picture)
    colours = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500"]
    # Text scaled with the picture (a 2.5% of its side, at least 12 px), each label on a dark plate
    # outside its box's outline, so numbers and title stay readable on any image at any size.
    font = ImageFont.load_default(size=max(12, round(max(size) / 40)))
    line = max(1, round(max(size) / 200))
    for t, box in enumerate(boxes.tolist()):
        x0, y0, x1, y1 = (v * scale for v in box)
        colour = colours[t % len(colours)]
        pen.rectangle([x0, y0, x1, y1], outline=colour, width=line)
        _label(pen, (x0, y0 - line), str(t + 1), colour, font, size, above=True)
    if title:
        _label(pen, (0, size[1]), title, "#ffffff", font, size, above=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)


def _label(pen, anchor: tuple[float, float], text: str, colour: str, font, size: tuple[int, int], above: bool):
    """``text`` on a dark plate whose bottom-left corner is ``anchor`` (moved inside the picture)."""
    left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
    w, h, pad = right - left, bottom - top, 2
    x = min(max(0.0, anchor[0]), size[0] - w - 2 * pad)
    y = min(max(0.0, anchor[1] - h - 2 * pad if above else anchor[1]), size[1] - h - 2 * pad)
    pen.rectangle([x, y, x + w + 2 * pad, y + h + 2 * pad], fill="#000000")
    pen.text((x + pad - left, y + pad - top), text, fill=colour, font=font)
