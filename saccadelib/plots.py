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
    import matplotlib

    if out is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        from .paths import atomic_path

        with atomic_path(Path(out)) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    return fig
