"""Probe: what the slope plateau rule would have done on the committed plateau runs, and how often each rule
cuts a curve of known slope under known noise. Writes records/plateau_rule/replay.{md,json}.

    .venv/bin/python scripts/probes/plateau_rule_replay.py

The runs replayed trained the plateau profile under the margin rule (10 epochs without a rise of 0.2 points
above the best); their records (config, history, metrics) are kept in records/plateau_rule/margin_rule_runs/.
Their histories stop being at the first rate where that rule cut it, so the replay says, at that epoch,
whether the slope rule (30 epochs, a fitted rise of 0.2 points beyond one standard error) saw a plateau,
and where, within the epochs at the first rate, it first would have. The simulation draws curves of
0.6 / 0.3 / 0 points per 10 epochs under 0.6 points of noise (the committed runs' level) and counts
how many each rule cuts within 120 epochs, and when.
"""
import random
import statistics
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from saccadelib.paths import write_text_atomic  # noqa: E402
from saccadelib.runinfo import run_metadata, write_json  # noqa: E402
from saccadelib.schedule import curve_slope, plateaus, rising  # noqa: E402

MARGIN = 0.002
OLD = {"epochs": 10, "test": "margin"}
NEW = {"epochs": 30, "test": "slope"}
OUT = ROOT / "records" / "plateau_rule"
MARGIN_RULE_RUNS = OUT / "margin_rule_runs"  # the plateau profile's runs under the margin rule, EXPERIMENT/RUN/


def first_cut(values: list[float], rule: dict) -> int | None:
    """The epoch (1-based) after which ``rule`` first sees a plateau in ``values``, or None."""
    for end in range(1, len(values) + 1):
        if plateaus([{"val_accuracy": v} for v in values[:end]], rule["epochs"], MARGIN, rule["test"]):
            return end
    return None


def replay(history: Path) -> dict:
    frame = pd.read_csv(history)
    values, rates = frame["val_accuracy"].tolist(), frame["lr"].tolist()
    at_first_rate = next((i for i, r in enumerate(rates) if r < rates[0]), len(rates))
    row = {"run": history.parent.relative_to(MARGIN_RULE_RUNS).as_posix(), "epochs": len(values),
           "epochs_at_first_rate": at_first_rate}
    window = values[max(0, at_first_rate - NEW["epochs"]):at_first_rate]
    if len(window) >= 3:
        slope, error = curve_slope(window)
        spread = statistics.pstdev(range(len(window))) * len(window) ** 0.5  # sqrt of the sum of squared x offsets
        row.update(slope_per_10=round(1000 * slope, 2), error_per_10=round(1000 * error, 2),
                   noise_points=round(100 * error * spread, 2),  # the residuals' standard deviation
                   slope_rule_saw_rise=rising(window, MARGIN) if len(window) == NEW["epochs"] else None)
    row["slope_rule_first_cut"] = first_cut(values[:at_first_rate], NEW)
    return row


def simulate(rule: dict, per_epoch: float, noise: float = 0.006, runs: int = 200, epochs: int = 120) -> dict:
    cuts = []
    for seed in range(runs):
        draw = random.Random(seed)
        curve = [0.85 + per_epoch * e + draw.gauss(0, noise) for e in range(epochs)]
        cuts.append(first_cut(curve, rule))
    fired = sorted(c for c in cuts if c)
    return {"rise_per_10_points": round(1000 * per_epoch, 2), "cut_share": len(fired) / runs,
            "median_cut_epoch": fired[len(fired) // 2] if fired else None}


def main() -> None:
    histories = sorted(MARGIN_RULE_RUNS.glob("*/*/history.csv"))
    rows = [replay(h) for h in histories]
    sims = {name: [simulate(rule, rate) for rate in (0.0006, 0.0003, 0.0)]
            for name, rule in (("margin, 10 epochs", OLD), ("slope, 30 epochs", NEW))}
    lines = ["# The plateau rule replayed", "",
             "Made by `python scripts/probes/plateau_rule_replay.py`. The margin rule (the plateau profile's runs in "
             "`margin_rule_runs/` trained under it: 10 epochs without a rise of 0.2 points above the best so far) against the slope rule (30 epochs whose "
             "least-squares line does not rise by 0.2 points beyond one standard error).", "",
             "## The margin rule's plateau runs at the epoch it cut their first rate", "",
             "| run | epochs | at the first rate | noise about the line (points) | slope over the last 30 (points per 10 epochs) "
             "| slope rule there | slope rule's first cut at the first rate |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        saw = {True: "rising: keeps the rate", False: "plateau", None: "fewer than 30 epochs"}[r.get("slope_rule_saw_rise")]
        slope = f"{r['slope_per_10']:+.2f} ± {r['error_per_10']:.2f}" if "slope_per_10" in r else "–"
        cut = r["slope_rule_first_cut"] or f"none in {r['epochs_at_first_rate']}"
        lines.append(f"| {r['run']} | {r['epochs']} | {r['epochs_at_first_rate']} | {r.get('noise_points', '–')} "
                     f"| {slope} | {saw} | {cut} |")
    lines += ["", "## Simulated curves: 0.6 points of epoch-to-epoch noise, 120 epochs, 200 draws each", "",
              "| rule | rise per 10 epochs | share cut | median epoch of the cut |", "|---|---|---|---|"]
    for name, cases in sims.items():
        for case in cases:
            lines.append(f"| {name} | {case['rise_per_10_points']} | {case['cut_share']:.2f} | "
                         f"{case['median_cut_epoch'] or '–'} |")
    write_text_atomic(OUT / "replay.md", "\n".join(lines) + "\n")
    write_json(OUT / "replay.json", {"runs": rows, "simulated": sims, "margin": MARGIN, "old": OLD, "new": NEW,
                                     "run": run_metadata()})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
