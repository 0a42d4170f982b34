"""Table of the sum-policy probes (records/sum_policy_probes/) against the run without free bits at the same epochs.

python scripts/probes/sum_policy_probes.py   → markdown on stdout
"""
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2] / "records" / "sum_policy_probes"
ABOUT = {"kl0": "T=2, no KL", "fb1": "T=2, free bits 1", "g2fb": "T=2, grid start, free bits 1",
         "g4": "T=4, grid start", "g4fb": "T=4, grid start, free bits 1",
         "fbd": "T=2, free bits 1, posterior detached from the encoder",
         "g4fbd": "T=4, grid start, free bits 1, posterior detached"}


def row(history: pd.DataFrame, epoch: int) -> str:
    r = history[history.epoch == epoch].iloc[0]
    hits = "/".join(f"{h:.2f}" for h in json.loads(r.val_hit_rate))
    return f"{r.val_accuracy:.3f} | {hits} | {r.val_both_digits_hit:.2f}"


def main() -> None:
    base = pd.read_csv(ROOT / "no_free_bits" / "history.csv")
    print("| probe | epochs | val acc | hits | both hit | no free bits at that epoch: val acc | hits | both hit |")
    print("|---|---|---|---|---|---|---|---|")
    for name, about in ABOUT.items():
        history = pd.read_csv(ROOT / name / "history.csv")
        last = int(history.epoch.max())
        print(f"| `{name}`: {about} | {last} | {row(history, last)} | {row(base, last)} |")


if __name__ == "__main__":
    main()
