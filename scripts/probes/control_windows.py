"""Probe: the window statistics of the glimpse controls on identification 100²'s test set, beside a learnt
policy's. The controls' windows do not depend on their weights (oracle: the digits' boxes; grid: fixed;
random: each canvas's own seeded draws), so an untrained model with the recipe's settings gives them.
Written to records/window_probes/controls_windows.json; the learnt windows of each probe are in its
record's metrics.json (``test.windows``) or windows.json.

    .venv/bin/python scripts/probes/control_windows.py
"""
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from saccadelib.evaluation import evaluate  # noqa: E402
from saccadelib.registry import build  # noqa: E402
from saccadelib.runinfo import run_metadata, write_json  # noqa: E402
from saccadelib.settings import resolve  # noqa: E402
from saccadelib.tasks import get_task  # noqa: E402

CONTROLS = ("oracle_glimpses", "grid_glimpses", "random_glimpses")


def main() -> None:
    torch.set_num_threads(2)
    test = get_task("identification").evaluation_set("test")
    out = {"task": "identification", "split": "test", "dataset": test.describe(), "run": run_metadata()}
    for name in CONTROLS:
        model_cfg, _, _ = resolve(name, "identification", "four_glimpses_grid_start")
        torch.manual_seed(0)
        scores = evaluate(build(name, model_cfg), test, seed=0, window_stats=True)
        out[name] = {"windows": scores["windows"], "hit_rate": scores["hit_rate"],
                     "both_digits_hit": scores["both_digits_hit"]}
        every = scores["windows"]["all"]
        print(f"{name}: side {every['side_px']['mean']} px, detail {every['detail']}, to the nearest digit "
              f"{every['centre_to_object_px']['mean']} px, strict hit {every['strict_hit']}, "
              f"all framed {scores['windows']['all_strictly_held']}, both held (loose) {scores['both_digits_hit']}")
    write_json(ROOT / "records" / "window_probes" / "controls_windows.json", out)


if __name__ == "__main__":
    main()
