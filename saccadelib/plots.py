"""Figures the notebooks and the CLI share: learning curves from a run's history.csv."""
from __future__ import annotations

import csv
import json
from pathlib import Path


def read_history(path: str | Path) -> list[dict]:
    """A run's history.csv as rows of numbers (list-valued columns, e.g. per-glimpse hit rates, parsed)."""
    rows = []
    with open(path, newline="") as handle:
        for raw in csv.DictReader(handle):
            row = {}
            for key, value in raw.items():
                if value is None or value == "":
                    continue
                row[key] = json.loads(value) if value.startswith("[") else float(value)
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no epochs")
    return rows


def learning_curve(history: str | Path | list[dict], out: str | Path | None = None, title: str = "",
                   x: str = "epoch"):
    """Validation accuracy (and accuracy after each glimpse, and each glimpse's hit rate when the model
    has glimpses) against ``x`` ("epoch" or "elapsed_s"). Saves a PNG when ``out`` is given."""
    plt = _pyplot()
    rows = read_history(history) if not isinstance(history, list) else history
    xs = [r[x] / (60 if x == "elapsed_s" else 1) for r in rows]
    glimpses = "val_hit_rate" in rows[0]
    fig, axes = plt.subplots(1, 2 if glimpses else 1, figsize=(10 if glimpses else 5.5, 3.8), squeeze=False)
    ax = axes[0, 0]
    ax.plot(xs, [r["val_accuracy"] for r in rows], color="black", lw=2, label="after all glimpses" if glimpses else "validation")
    if "val_step_accuracy" in rows[0] and len(rows[0]["val_step_accuracy"]) > 1:
        for t in range(len(rows[0]["val_step_accuracy"]) - 1):
            ax.plot(xs, [r["val_step_accuracy"][t] for r in rows], lw=1, alpha=0.7, label=f"after glimpse {t + 1}")
    ax.set_xlabel("training minutes" if x == "elapsed_s" else "epoch")
    ax.set_ylabel("validation exact match")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    if glimpses:
        ax = axes[0, 1]
        for t in range(len(rows[0]["val_hit_rate"])):
            ax.plot(xs, [r["val_hit_rate"][t] for r in rows], label=f"glimpse {t + 1}")
        if "val_both_digits_hit" in rows[0]:
            ax.plot(xs, [r["val_both_digits_hit"] for r in rows], color="black", ls="--", label="both digits hit")
        ax.set_xlabel(axes[0, 0].get_xlabel())
        ax.set_ylabel("hit rate (window holds a digit's centre)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def _pyplot():
    """pyplot with whatever backend is active: a notebook's inline backend shows the figures (switching to
    Agg here would silently stop every later figure from showing); without a display matplotlib already
    falls back to Agg."""
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: str | Path, close: bool = True) -> Path:
    """PNG through an atomic rename (matplotlib's PNGs are byte-identical across runs: they diff well)."""
    from .paths import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return out


def compare_curves(histories: dict[str, list[dict]], out: str | Path | None = None, title: str = "",
                   metric: str = "val_accuracy", ylabel: str = "validation exact match"):
    """One line per run (label → history rows): ``metric`` against epochs and against training minutes."""
    plt = _pyplot()
    import seaborn as sns

    # one colour per model, one line style per seed ("label (seed k)"), so that seeds of a model read as one
    models = list(dict.fromkeys(label.split(" (seed")[0] for label in histories))
    palette = dict(zip(models, sns.color_palette("tab10", max(1, len(models)))))
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    seen: dict[str, int] = {}
    for label, rows in histories.items():
        model = label.split(" (seed")[0]
        style = styles[seen.get(model, 0) % len(styles)]
        seen[model] = seen.get(model, 0) + 1
        values = [r[metric] for r in rows]
        for ax, x in zip(axes, ([r["epoch"] for r in rows], [r["elapsed_s"] / 60 for r in rows])):
            ax.plot(x, values, color=palette[model], ls=style, label=label, marker=".", ms=3)
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel("training minutes")
    axes[0].set_ylabel(ylabel)
    for ax in axes:
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def accuracy_against_cost(panels: dict[str, list[dict]], out: str | Path | None = None):
    """Per data set (a row): each model's validation curve against canvases seen (left) and against
    minutes of training and validation (right), ending in its test accuracy, mean ± std over seeds
    (``study.reports.cost_curves``)."""
    plt = _pyplot()
    import seaborn as sns
    from matplotlib.ticker import NullFormatter

    if not panels:
        raise ValueError("no runs to draw: run the experiments first")
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 3.4 * len(panels)), squeeze=False)
    for row, (title, models) in zip(axes, panels.items()):
        palette = sns.color_palette("tab10", max(1, len(models)))
        for colour, m in zip(palette, models):
            label = f"{m['label']}: {m['test_mean']:.1f}" + (f" ± {m['test_std']:.1f}" if m["seeds"] > 1 else "") + \
                f"% ({m['seeds']} seed{'s' if m['seeds'] > 1 else ''})"
            for ax, x in zip(row, (m["canvases"], m["minutes"])):
                ax.plot(x, m["val"], color=colour, lw=1, alpha=0.6)
                ax.errorbar([x[-1]], [m["test_mean"]], yerr=[m["test_std"]], color=colour, marker="o", capsize=3,
                            label=label)
        row[0].set_xscale("log")
        row[0].xaxis.set_minor_formatter(NullFormatter())  # a span under a decade labels every minor tick
        row[0].set_xlabel("canvases seen")
        row[1].set_xlabel("minutes (training and validation, 2 cores)")
        for ax in row:
            ax.set_ylabel("accuracy (%): validation line, test dot")
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            ax.set_title(title, fontsize=10)
        row[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def plateau_curve(cell: dict, out: str | Path | None = None):
    """One Table 1 cell trained to its plateau (``study.reports.plateau_curves``): each seed's validation
    accuracy against canvases seen (left) and hours (right), a mark where the learning rate fell, the test
    accuracy at the end, and the paper's number as a line. A run with a ``device`` (trained elsewhere) is
    dashed, against canvases seen only."""
    plt = _pyplot()
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    palette = sns.color_palette("tab10", max(1, len(cell["runs"])))
    for colour, run in zip(palette, cell["runs"]):
        falls = [k for k in range(1, len(run["lr"])) if run["lr"][k] < run["lr"][k - 1]]
        elsewhere = f" ({run['device']})" if run.get("device") else ""
        # a run on other hardware shares the canvases axis only: its hours are not our 2 cores' hours
        for ax, x in list(zip(axes, (run["canvases"], run["hours"])))[:1 if elsewhere else 2]:
            ax.plot(x, run["val"], color=colour, lw=1, ls="--" if elsewhere else "-",
                    label=f"seed {run['seed']}{elsewhere}: {run['test']:.1f}% test, stopped by {run['stopped'] or '?'}")
            ax.plot([x[k] for k in falls], [run["val"][k] for k in falls], "v", color=colour, ms=6)
            ax.plot([x[-1]], [run["test"]], "o", color=colour)
    for ax in axes:
        if cell["paper"] is not None:
            ax.axhline(cell["paper"], color="black", ls="--", lw=1, label=f"paper: {cell['paper']:g}%")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].set_xlabel("canvases seen")
    axes[1].set_xlabel("hours (training and validation, 2 cores)")
    axes[0].set_ylabel("validation accuracy (%)")
    handles, labels = [sum(pair, []) for pair in zip(*(ax.get_legend_handles_labels() for ax in axes))]
    unique = dict(zip(labels, handles))
    axes[1].legend(unique.values(), unique.keys(), fontsize=7, loc="lower right")
    fig.suptitle(f"{cell['system']}: {cell['task']} {cell['side']}², to its plateau (▼: the learning rate fell)",
                 fontsize=10)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


GLIMPSE_COLOURS = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500"]


def draw_saccades(ax, image, windows, boxes=None, title: str = "", colour_title: str | None = None):
    """One canvas [C,H,W] with its windows [T,3] (normalized) drawn as numbered boxes; digit boxes (in
    pixels) dotted."""
    from matplotlib.patches import Rectangle

    from .sampler import window_to_box

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
    import torch

    from .sources import FileBatchSource, UpsampledSource
    from .datasets.sparse import SparseSource

    plt = _pyplot()
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
    import torch

    from .draws import CanvasDraws
    from .sources import TensorSource
    from .sampler import noisy_proxy

    plt = _pyplot()
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
    import numpy as np
    import torch

    from .draws import CanvasDraws
    from .sources import TensorSource
    from .sampler import noisy_proxy

    if len(curves) != len(levels):
        raise ValueError(f"one list of curves per level: got {len(curves)} for {len(levels)} levels")
    plt = _pyplot()
    import seaborn as sns

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
    plt = _pyplot()
    import matplotlib.image as mpimg

    fig, axes = plt.subplots(1, len(images), figsize=(9 * len(images), 6), squeeze=False)
    for ax, (title, path) in zip(axes[0], images.items()):
        ax.imshow(mpimg.imread(str(path)))
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def proxy_sweep(table, proxy_sides: dict[str, int], out: str | Path | None = None, title: str = ""):
    """Test accuracy of the proxy-only CNN against its proxy side, per data set (the label's prefix), with
    every other model's accuracy as a horizontal line: where the proxy stops being enough. ``table`` has
    ``label`` ("<data set>/<run name>") and ``mean`` (test %) columns; ``proxy_sides`` maps the run names
    of the proxy-only CNN to their sides."""
    plt = _pyplot()
    sets = list(dict.fromkeys(label.split("/")[0] for label in table["label"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 3.8), squeeze=False)
    for ax, name in zip(axes[0], sets):
        rows = table[table["label"].str.startswith(name + "/") & table["mean"].notna()]  # trained runs only
        spread = rows["std"].fillna(0) if "std" in rows else [0.0] * len(rows)
        runs = [(label.split("/")[1], mean, std) for label, mean, std in zip(rows["label"], rows["mean"], spread)]
        sweep = sorted((proxy_sides[run], mean, std) for run, mean, std in runs if run in proxy_sides)
        if sweep:
            ax.errorbar([s for s, _, _ in sweep], [m for _, m, _ in sweep], yerr=[e for _, _, e in sweep], fmt="o-",
                        color="black", lw=2, capsize=3, label="proxy-only CNN")
        others = [(run, mean, std) for run, mean, std in runs if run not in proxy_sides]
        for k, (run, mean, std) in enumerate(others):
            colour = GLIMPSE_COLOURS[k % len(GLIMPSE_COLOURS)]
            ax.axhline(mean, ls="--", lw=1.2, color=colour, label=run)
            if std > 0:  # the spread over seeds
                ax.axhspan(mean - std, mean + std, color=colour, alpha=0.12, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("proxy side (pixels)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.set_title(f"{title} {name}".strip(), fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig
