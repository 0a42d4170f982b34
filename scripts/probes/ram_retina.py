"""Probe: what RAM's two retinas cost and how far apart their patches are (docs/baselines.md, baselines.RAMConfig.retina):
per retina, one thread, batch 128: the retina's time per batch and a training step's, then on 128 sum test canvases
the mean absolute difference of the pyramid's patches from the supersampled ones, per scale.

    .venv/bin/python scripts/probes/ram_retina.py
"""
import time, torch
torch.set_num_threads(1)
from saccadelib.baselines.ram import RAM, RAMConfig
from saccadelib.sources import TensorSource
x = torch.rand(128, 1, 100, 100)
for name, cfg in (("base", RAMConfig(n_classes=19)), ("sensor", RAMConfig(n_classes=19, patch=16, patch_fraction=0.16, scales=4)), ("sensor, pyramid", RAMConfig(n_classes=19, retina="pyramid", patch=16, patch_fraction=0.16, scales=4))):
    m = RAM(cfg).train()
    src = TensorSource(x)
    loc = torch.rand(128, 2) * 2 - 1
    t = time.perf_counter()
    lv = m.retina_levels(src)
    for _ in range(6*5): m.retina(lv, loc)
    r = (time.perf_counter() - t) / 5
    batch = {"image": x, "label": torch.randint(0, 19, (128,))}
    t = time.perf_counter()
    for _ in range(5):
        loss, _ = m.training_loss(batch); loss.backward()
    s = (time.perf_counter() - t) / 5
    print(name, f"retina per batch {r*1000:.0f} ms, step {s*1000:.0f} ms, per epoch of 157 steps {s*157:.0f} s")

from saccadelib.datasets.twodigit import eval_set
x = eval_set("sum", "test").as_dict(0, 128)["image"]
for name, kw in (("base", {}), ("sensor", dict(patch=16, patch_fraction=0.16, scales=4))):
    a = RAM(RAMConfig(n_classes=19, **kw)); b = RAM(RAMConfig(n_classes=19, retina="pyramid", **kw))
    src = TensorSource(x); loc = torch.rand(128, 2) * 2 - 1
    pa = a.retina(a.retina_levels(src), loc).view(128, -1, kw.get("patch", 12) ** 2)
    t = time.perf_counter(); lv = b.retina_levels(src); pb = b.retina(lv, loc).view(128, -1, kw.get("patch", 12) ** 2); tb = time.perf_counter() - t
    t = time.perf_counter(); a.retina(a.retina_levels(src), loc); ta = time.perf_counter() - t
    diff = (pa - pb).abs().mean((0, 2)) / pa.abs().mean((0, 2)).clamp_min(1e-6)
    print(name, "relative mean abs diff per scale", [f"{d:.3f}" for d in diff.tolist()], f"time {ta*1000:.0f} vs {tb*1000:.0f} ms", [tuple(l.images.shape[-2:]) for l in lv])
