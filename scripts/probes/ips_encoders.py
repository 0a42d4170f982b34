"""Probe: what IPS's two patch encoders cost per patch, counted (torch's FlopCounterMode) on one 50² grey
patch in evaluation mode: the paper's (ResNet-18 through its second stage) and the small one a CPU budget
trains. Writes records/ips/encoders.json.

    .venv/bin/python scripts/probes/ips_encoders.py
"""
import torch
from torch.utils.flop_counter import FlopCounterMode

from saccadelib.baselines.ips import ENCODERS, IPSConfig, patch_encoder
from saccadelib.paths import REPO_ROOT
from saccadelib.runinfo import run_metadata, write_json

PATCH = 50


def flops(encoder: str) -> int:
    net = patch_encoder(IPSConfig(encoder=encoder, patch=PATCH)).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 1, PATCH, PATCH))
    return counter.get_total_flops()


def main() -> None:
    rows = {name: {"mflop_per_patch": round(flops(name) / 1e6, 2),
                   "parameters": sum(p.numel() for p in patch_encoder(IPSConfig(encoder=name)).parameters())}
            for name in ENCODERS}
    write_json(REPO_ROOT / "records" / "ips" / "encoders.json", {**run_metadata(), "patch": PATCH, "encoders": rows})
    for name, row in rows.items():
        print(f"{name}: {row['mflop_per_patch']} MFLOP a {PATCH}² patch, {row['parameters']:,} parameters")


if __name__ == "__main__":
    main()
