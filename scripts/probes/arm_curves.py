"""Every arm's validation curve of one probe, from its committed records: a figure and a table.

Reads records/<probe>/<arm>/history.csv and metrics.json for the arms of scripts/probes/arms/<probe>.toml
that have finished (in the table's order) and writes records/<probe>/curves.png (validation accuracy by
epoch and by training minute, one line per arm) and records/<probe>/curves.md: each arm's validation accuracy after a quarter,
half and all of its epochs (the shape of its curve: the probes' cosine schedule flattens every curve at
its end, so a slope there says little), its best and at which epoch, its test accuracy, and for a model
with windows what its test scoring measured of them (saccadelib.window_stats, over all glimpses): their
side in image pixels, the detail they are read at (crop pixels per image pixel), their centres' distance
to the nearest object's, how far each glimpse's centre moves from image to image, and the share of
images whose every object a window holds.

    python scripts/probes/arm_curves.py ram
    python scripts/probes/arm_curves.py window --arms recipe last_step last_step_crop64
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_arms import REPO_ROOT, load_table  # noqa: E402

from saccadelib.plots import read_history  # noqa: E402
from saccadelib.plots.curves import compare_curves  # noqa: E402
from saccadelib.paths import write_text_atomic  # noqa: E402


def finished_arms(table: dict, names: list[str]) -> list[tuple[str, Path]]:
    """(name, record folder) of the named arms (or all, in the table's order) whose run has finished."""
    arms = names or list(table["arms"])
    unknown = [name for name in arms if name not in table["arms"]]
    if unknown:
        raise SystemExit(f"unknown arm {unknown[0]}; valid: {' '.join(table['arms'])}")
    folders = [(name, REPO_ROOT / table["records"] / name) for name in arms]
    return [(name, folder) for name, folder in folders if (folder / "metrics.json").is_file()]


def arm_row(name: str, folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    history = read_history(folder / "history.csv")
    curve = [row["val_accuracy"] for row in history]
    return {"arm": name, "epochs": len(curve), "history": history, "best_val": metrics["best_val_accuracy"],
            "best_epoch": metrics["best_epoch"], "test": metrics["test"]["accuracy"], "curve": curve,
            "windows": windows_text(scored_windows(folder, metrics["test"]))}


def scored_windows(folder: Path, test: dict) -> dict:
    """The test scoring's window statistics: from windows.json (scripts/probes/window_stats.py, the posterior's
    mean as the study scores, with the centres' spread older records lack) where the arm has one."""
    path = folder / "windows.json"
    return json.loads(path.read_text())["posterior_mean"] if path.is_file() else test


def windows_text(test: dict) -> list[str]:
    """The window columns of one arm's test scoring; "–" where it has no windows or an older record lacks one."""
    every = (test.get("windows") or {}).get("all")
    if not every:
        return ["–"] * 6

    def known(value, fmt: str) -> str:
        return "–" if value is None else fmt.format(value)
    return [known(every["side_px"]["mean"], "{:.1f}"), known(every.get("detail"), "{:.2f}"),
            known(every["centre_to_object_px"]["mean"], "{:.1f}"), known(every.get("centre_spread_px"), "{:.1f}"),
            known(test.get("both_digits_hit"), "{:.1%}"), known(every.get("strict_hit"), "{:.1%}")]


def curve_label(arm: str) -> str:
    """An arm's line in the figure: "last_step_seed1" → "last_step (seed 1)", so that seeds share a colour."""
    base, _, seed = arm.rpartition("_seed")
    return f"{base} (seed {seed})" if base and seed.isdigit() else arm


def markdown(probe: str, rows: list[dict]) -> str:
    lines = [f"Validation curves of the `{probe}` probe's finished arms (`python scripts/probes/arm_curves.py "
             f"{probe}`; each arm's command in its folder, its curve in curves.png, where training minutes are as "
             f"measured on the machine and under the load its run had: compare accuracy at equal epochs, not minutes).",
             "", "| arm | epochs | validation % after ¼, ½, all epochs | best validation % (epoch) | test % | window "
             "side px | detail | centre to nearest object px | centre's spread px | every object held | strict hit |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        curve, n = r["curve"], r["epochs"]
        shape = " / ".join(f"{100 * curve[max(1, round(n * part)) - 1]:.1f}" for part in (0.25, 0.5, 1.0))
        lines.append(f"| {r['arm']} | {n} | {shape} | {100 * r['best_val']:.1f} ({r['best_epoch']}) | "
                     f"{100 * r['test']:.1f} | " + " | ".join(r["windows"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe", help="the table's name in scripts/probes/arms/")
    parser.add_argument("--arms", nargs="*", default=[], help="arms to show (default: every finished one)")
    args = parser.parse_args(argv)
    table = load_table(args.probe)
    rows = [arm_row(name, folder) for name, folder in finished_arms(table, args.arms)]
    if not rows:
        raise SystemExit(f"no finished arm of {args.probe!r} under {table['records']}/: train one first "
                         f"(python scripts/probes/train_arms.py {args.probe})")
    out = REPO_ROOT / table["records"]
    write_text_atomic(out / "curves.md", markdown(args.probe, rows))
    compare_curves({curve_label(r["arm"]): r["history"] for r in rows}, out / "curves.png", title=f"probe: {args.probe}")
    print(f"wrote {out / 'curves.md'} and curves.png ({len(rows)} arms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
