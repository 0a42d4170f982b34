"""Pictures of where models looked: saccades drawn on images, a gallery of test canvases, the noisy
proxy's view and Figure 5, figures side by side."""
from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.patches import Rectangle

from ..datasets.sparse import SparseSource
from ..draws import CanvasDraws
from ..sampler import noisy_proxy, window_to_box
from ..sources import FileBatchSource, TensorSource, UpsampledSource
from .curves import GLIMPSE_COLOURS, save_figure


def draw_saccades(ax, image, windows, boxes=None, title: str = "", colour_title: str | None = None):
    """One canvas [C,H,W] with its windows [T,3] (normalized) drawn as numbered boxes; digit boxes (in
    pixels) dotted."""
    picture = image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)
    height, width = image.shape[-2:]
    ax.imshow(picture.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1, extent=(0, width, height, 0))
    if boxes is not None:
        for x0, y0, x1, y1 in boxes.tolist():
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls=":", lw=0.8, color="white"))
    for t, (x0, y0, x1, y1) in enumerate(window_to_box(windows, height, width).tolist()):
        colour = GLIMPSE_COLOURS[t % len(GLIMPSE_COLOURS)]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, color=colour))
        ax.text(x0 + 1, y0 + 1, str(t + 1), color=colour, fontsize=7, va="top", ha="left")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8, color=colour_title or "black")


SHOWN_SPARSE_SIDE = 512


def saccade_gallery(model, dataset, n: int = 8, out: str | Path | None = None, title: str = "",
                    class_names: list[str] | None = None, columns: int = 4):
    """The first ``n`` images of ``dataset`` (not picked) with the model's saccades, its prediction and
    the truth (green when right). Large-image models read their lazy upsample; the canvas is shown as
    it is, since the upsample holds no detail beyond it."""
    n = min(n, len(dataset))
    batch = dataset.as_dict(0, n)
    model.eval()
    with torch.no_grad():
        result = model(batch["image"], proxy=batch.get("proxy"))
    shown, boxes = batch["image"], batch.get("boxes")
    if isinstance(shown, UpsampledSource):
        shown = shown.base
    if isinstance(shown, SparseSource):  # a large sparse canvas: shown at 512², its boxes scaled to match
        boxes = None if boxes is None else boxes * (SHOWN_SPARSE_SIDE / shown.side)
        shown = shown.proxy(SHOWN_SPARSE_SIDE).clamp(0, 1) ** 0.5  # the square root keeps thin strokes visible
    if isinstance(shown, FileBatchSource):  # photos on disk: show a 384² reading of each (windows are relative)
        shown = torch.cat([source.proxy(384) for source in shown.sources])
    names = class_names or [str(k) for k in range(result.logits.shape[-1])]
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.6 * rows + 0.4), squeeze=False,
                             layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        pred, true = int(result.logits[k].argmax()), int(batch["label"][k])
        draw_saccades(ax, shown[k], result.windows[k], boxes[k] if boxes is not None else None,
                      f"pred {names[pred]} · true {names[true]}", "#1a7f37" if pred == true else "#cf222e")
    fig.suptitle(title, fontsize=10)
    if out is not None:
        save_figure(fig, out)
    return fig


def noise_view(model, image, label: int | None = None, sigma: float = 0.0, keep: float = 1.0,
               class_names: list[str] | None = None, seed: int = 0):
    """What the sliders of 03 show: the proxy at (σ, keep), and the model's saccades and prediction
    given that proxy. Returns (figure, {"prediction", "probability", "windows"})."""
    model.eval()
    source = TensorSource(image.unsqueeze(0))
    proxy = noisy_proxy(source.proxy(model.cfg.proxy_size), sigma, keep, CanvasDraws(torch.tensor([seed])))
    with torch.no_grad():
        result = model(source, proxy=proxy)
    probs = result.logits.softmax(-1)[0]
    names = class_names or [str(k) for k in range(len(probs))]
    pred = int(probs.argmax())
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.3))
    axes[0].imshow(proxy[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"proxy shown: σ={sigma:g}, keep={keep:g}", fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    truth = f" · true {names[label]}" if label is not None else ""
    draw_saccades(axes[1], image, result.windows[0], title=f"pred {names[pred]} ({probs[pred]:.0%}){truth}",
                  colour_title=None if label is None else ("#1a7f37" if pred == label else "#cf222e"))
    fig.tight_layout()
    return fig, {"prediction": names[pred], "probability": float(probs[pred]),
                 "windows": result.windows[0].tolist()}


def _level_name(sigma: float, keep: float) -> str:
    return f"σ={sigma:g}, keep={keep:g}"


def figure5(curves: list[list[list[dict]]], levels: list[tuple[float, float]], image, out: str | Path | None = None,
            test_accuracy: list[list[float]] | None = None, robustness=None, proxy_size: int = 32, seed: int = 0):
    """Paper Fig. 5, with its seed spread. Left: validation exact match against epochs for each trained
    proxy-noise level (``curves``: per level, one history per seed; the line is their mean, the band their
    range; the legend gives the test accuracy, mean ± std over seeds). Right: test accuracy at every level
    of ``robustness`` (noise_robustness: the noise-free models scored with a noisy proxy, mean ± std) beside
    the models retrained at their level. Bottom: one test image's proxy at each level."""
    if len(curves) != len(levels):
        raise ValueError(f"one list of curves per level: got {len(curves)} for {len(levels)} levels")

    shown = levels if robustness is None or not len(robustness) else \
        list(dict.fromkeys(zip(robustness["sigma"], robustness["keep"])))
    fig = plt.figure(figsize=(max(10, 1.5 * len(shown)), 6.6))
    grid = fig.add_gridspec(2, len(shown), height_ratios=[2.6, 1])
    half = max(1, len(shown) // 2)
    left, right = fig.add_subplot(grid[0, :half]), fig.add_subplot(grid[0, half:])
    palette = sns.color_palette("viridis", len(levels))
    for k, (runs, (sigma, keep)) in enumerate(zip(curves, levels)):
        epochs = min(len(rows) for rows in runs)
        values = np.array([[r["val_accuracy"] for r in rows[:epochs]] for rows in runs])
        x = [r["epoch"] for r in runs[0][:epochs]]
        label = _level_name(sigma, keep)
        if test_accuracy is not None:
            acc = np.array(test_accuracy[k]) * 100
            label += f" (test {acc.mean():.1f}" + (f" ± {acc.std(ddof=1):.1f}" if len(acc) > 1 else "") + \
                f"%, {len(acc)} seed{'s' if len(acc) > 1 else ''})"
        left.plot(x, values.mean(0), color=palette[k], label=label, ls="-" if keep == 1 else "--", marker=".", ms=3)
        if len(values) > 1:
            left.fill_between(x, values.min(0), values.max(0), color=palette[k], alpha=0.2, lw=0)
    left.set_xlabel("epoch")
    left.set_ylabel("validation exact match")
    left.set_ylim(0, 1)
    left.grid(alpha=0.3)
    left.legend(fontsize=7, loc="lower right")
    left.set_title("retrained at each level (band: range over seeds)", fontsize=9)
    names = [_level_name(*level) for level in shown]
    if robustness is not None and len(robustness):
        stats = robustness.groupby(["sigma", "keep"], sort=False)["test_accuracy"].agg(["mean", "std"])
        stats = stats.reindex(shown)
        right.errorbar(range(len(shown)), stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                       color="#444444", label="trained without noise, scored with a noisy proxy")
    if test_accuracy is not None:
        at = [shown.index(level) for level in levels if level in shown]
        acc = [np.array(test_accuracy[k]) for k, level in enumerate(levels) if level in shown]
        right.errorbar(at, [a.mean() for a in acc], yerr=[a.std(ddof=1) if len(a) > 1 else 0 for a in acc],
                       marker="s", ls="none", capsize=3, color="#cf222e", label="retrained at that level")
    right.set_xticks(range(len(shown)))
    right.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
    right.set_ylabel("test exact match (mean ± std over seeds)")
    right.grid(alpha=0.3)
    right.legend(fontsize=7, loc="lower left")
    right.set_title("test accuracy at each proxy-noise level", fontsize=9)
    clean = TensorSource(image.unsqueeze(0)).proxy(proxy_size)
    for k, (sigma, keep) in enumerate(shown):
        ax = fig.add_subplot(grid[1, k])
        ax.imshow(noisy_proxy(clean, sigma, keep, CanvasDraws(torch.tensor([seed])))[0, 0].numpy(),
                  cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"σ={sigma:g} keep={keep:g}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def side_by_side(images: dict[str, str | Path], out: str | Path | None = None):
    """Saved PNGs (title → path) in one row: Figure 4 from the two identification galleries."""
    fig, axes = plt.subplots(1, len(images), figsize=(9 * len(images), 6), squeeze=False)
    for ax, (title, path) in zip(axes[0], images.items()):
        ax.imshow(mpimg.imread(str(path)))
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig
