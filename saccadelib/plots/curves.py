"""Curves the notebooks and the CLI share: learning curves from a run's history.csv, curves compared,
accuracy against cost, a plateau cell's curves, the proxy-size sweep."""
from __future__ import annotations

import csv
import json
from pathlib import Path

# pyplot with whatever backend is active: a notebook's inline backend shows the figures (switching to Agg
# here would silently stop every later figure from showing); without a display matplotlib falls back to Agg
import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.ticker import NullFormatter

from ..paths import atomic_path

GLIMPSE_COLOURS = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500"]  # glimpse t's colour everywhere

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


def save_figure(fig, out: str | Path, close: bool = True) -> Path:
    """PNG through an atomic rename (matplotlib's PNGs are byte-identical across runs: they diff well)."""
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    if close:
        plt.close(fig)
    return out


def compare_curves(histories: dict[str, list[dict]], out: str | Path | None = None, title: str = "",
                   metric: str = "val_accuracy", ylabel: str = "validation exact match"):
    """One line per run (label → history rows): ``metric`` against epochs and against training minutes."""
    # one colour per model, one line style per seed ("label (seed k)"), so that seeds of a model read as one
    models = list(dict.fromkeys(label.split(" (seed")[0] for label in histories))
    # tab10 repeats its colours past ten models; a probe's many arms take evenly spaced hues instead
    palette = dict(zip(models, sns.color_palette("tab10" if len(models) <= 10 else "husl", max(1, len(models)))))
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


def proxy_sweep(table, proxy_sides: dict[str, int], out: str | Path | None = None, title: str = ""):
    """Test accuracy of the proxy-only CNN against its proxy side, per data set (the label's prefix), with
    every other model's accuracy as a horizontal line: where the proxy stops being enough. ``table`` has
    ``label`` ("<data set>/<run name>") and ``mean`` (test %) columns; ``proxy_sides`` maps the run names
    of the proxy-only CNN to their sides."""
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
        # the glimpse colours run out past six runs (06 has seven or more), tab10 past ten
        palette = GLIMPSE_COLOURS if len(others) <= len(GLIMPSE_COLOURS) else \
            sns.color_palette("tab10" if len(others) <= 10 else "husl", len(others))
        for (run, mean, std), colour in zip(others, palette):
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
