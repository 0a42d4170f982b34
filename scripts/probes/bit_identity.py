"""Probe: whether a refactor changed what the library computes. Saves, for a fixed batch of identification
canvases, each model's training loss and gradients and its evaluation logits and windows, and a tiled
pyramid's proxy, crops and window gradients; run it in two checkouts and compare the files with ``--compare``.

    (cd OLD_CHECKOUT && python /path/to/bit_identity.py /tmp/old.pt)
    python scripts/probes/bit_identity.py /tmp/new.pt
    python scripts/probes/bit_identity.py --compare /tmp/old.pt /tmp/new.pt
"""
import os
import sys
import tempfile

import numpy as np
import torch

if sys.argv[1] == "--compare":
    old, new = (torch.load(path) for path in sys.argv[2:4])
    differ = sorted(set(old) ^ set(new)) + [k for k in old if k in new and not torch.equal(old[k], new[k])]
    print(f"bit-identical: {len(old) - len(differ)} of {len(old)}; differ: {differ or 'none'}")
    sys.exit(1 if differ else 0)
out_path = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)
from saccadelib.datasets.twodigit import eval_set  # noqa: E402
from saccadelib.recipes import recipe  # noqa: E402
from saccadelib.registry import build, config_for  # noqa: E402

batch = eval_set("identification", "test").as_dict(0, 16)
res = {}
for name, settings in (("saccade", recipe("four_glimpses_grid_start")), ("saccade_cells", {}), ("ram", {}),
                       ("oracle_glimpses", recipe("four_glimpses_grid_start")), ("proxy_cnn", {})):
    torch.manual_seed(1)
    model = build(name, config_for(name, 55, settings))
    model.train()
    torch.manual_seed(2)
    loss, _ = model.training_loss(batch)
    loss.backward()
    res[name + "_loss"] = loss.detach()
    res[name + "_grads"] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    model.eval()
    out = model.evaluate_batch({**batch, "draw_keys": torch.arange(16)})
    res[name + "_logits"] = out["logits"]
    if "windows" in out:
        res[name + "_windows"] = out["windows"]
try:  # the package layout, or the one before it
    from saccadelib.datasets.pyramids import write_pyramid
    from saccadelib.sources import PyramidSource
except ImportError:
    from saccadelib.pyramid import PyramidSource, write_pyramid
d = tempfile.mkdtemp()
pix = np.random.default_rng(0).integers(0, 255, (700, 500, 3), dtype=np.uint8)
p = write_pyramid(os.path.join(d, "x.tif"), pix, tile=128, smallest=128)
src = PyramidSource(p, channels=3)
w = torch.tensor([[[0.3, 0.2, -0.1], [0.05, -0.6, 0.5]]], requires_grad=True)
crops = src.crop(w, 16)
crops.sum().backward()
res["pyr_proxy"], res["pyr_crops"], res["pyr_grad"] = src.proxy(32), crops.detach(), w.grad
torch.save(res, out_path)
print("saved", len(res))
