"""Probe: how fast do conv-block designs learn identification from the 32² proxy alone?

Trains each design for 300 steps of 128 fresh canvases (Adam 1e-3, 2 threads) and prints the running
class NLL and accuracy every 100 steps. This is the measurement behind the model's default conv block
(BatchNorm + max-pooling instead of strided GroupNorm convolutions); see the README.

    .venv/bin/python scripts/probes/classifier_blocks.py     # about 2 minutes on 2 cores
"""
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from saccadelib.datasets.twodigit import TwoDigitStream


def strided_block(cin, cout, stride, norm):
    layer = nn.GroupNorm(8, cout) if norm == "group" else nn.BatchNorm2d(cout)
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), layer, nn.ReLU())


def strided_net(norm, w=16):
    return nn.Sequential(strided_block(1, w, 1, norm), strided_block(w, 2 * w, 2, norm),
                         strided_block(2 * w, 4 * w, 2, norm), strided_block(4 * w, 8 * w, 2, norm),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * w, 256), nn.ReLU(), nn.Linear(256, 55))


def pooled_net(w=16):
    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
    return nn.Sequential(block(1, w), nn.MaxPool2d(2), block(w, 2 * w), nn.MaxPool2d(2), block(2 * w, 4 * w),
                         nn.MaxPool2d(2), block(4 * w, 8 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8 * w, 256), nn.ReLU(), nn.Linear(256, 55))


def main(steps=300):
    torch.set_num_threads(2)
    designs = {"strided GroupNorm": lambda: strided_net("group"), "strided BatchNorm": lambda: strided_net("batch"),
               "BatchNorm + max-pool": pooled_net}
    for name, make in designs.items():
        torch.manual_seed(0)
        net = make()
        optimizer = torch.optim.Adam(net.parameters(), 1e-3)
        nll, acc, start = [], [], time.time()
        for i, batch in enumerate(TwoDigitStream("identification", 128 * steps, 128, seed=0)):
            proxy = F.interpolate(batch["image"], size=32, mode="bilinear", antialias=True)
            logits = net(proxy)
            loss = F.cross_entropy(logits, batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            nll.append(loss.item())
            acc.append((logits.argmax(-1) == batch["label"]).float().mean().item())
            if (i + 1) % 100 == 0:
                print(f"{name:>22} step {i + 1}: nll {sum(nll[-100:]) / 100:.3f} "
                      f"acc {sum(acc[-100:]) / 100:.3f} ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
