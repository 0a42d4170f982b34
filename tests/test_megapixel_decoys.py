"""Megapixel MNIST's decoy variants: the plain canvases with five shapes that are not digits added, blobs that
an ink prior ranks above every digit and lookalikes that a proxy cannot tell from digits."""
import json

import numpy as np
import pytest
import torch

from saccadelib.datasets import megapixel, megapixel_decoys
from saccadelib.datasets import twodigit as data
from saccadelib.tasks import get_task
from saccadelib.train import train_model
from saccadelib.window_stats import window_statistics

SIDE = 400


def _pair(kind, mnist_root, n=6, split="val"):
    plain = megapixel.generate(split, n=n, config=megapixel.MegapixelConfig(side=SIDE), root=mnist_root)
    decoyed = megapixel.generate(split, n=n, config=megapixel.MegapixelConfig(side=SIDE, decoys=kind), root=mnist_root)
    return plain, decoyed


def _inside(boxes, side=SIDE):
    """bool [side, side]: the pixels of the 28² boxes [k, 4]."""
    mask = torch.zeros(side, side, dtype=torch.bool)
    for x, y in boxes[:, :2].long().tolist():
        mask[y:y + 28, x:x + 28] = True
    return mask


@pytest.mark.parametrize("kind", ["blobs", "lookalikes"])
def test_a_decoy_set_is_the_plain_set_with_decoys_added(kind, mnist_root):
    plain, decoyed = _pair(kind, mnist_root)
    for name in ("digits", "boxes", "source"):
        assert torch.equal(getattr(plain, name), getattr(decoyed, name))
    assert all(torch.equal(plain.labels[k], decoyed.labels[k]) for k in plain.labels)
    assert plain.decoy_boxes is None and decoyed.decoy_boxes.shape == (len(plain), 5, 4)
    before, after = plain.images.dense(), decoyed.images.dense()
    pool, _ = data.digit_pool("val", mnist_root)
    for i in range(len(plain)):
        decoys = _inside(decoyed.decoy_boxes[i])
        assert torch.equal(before[i][~decoys], after[i][~decoys])  # digits and noise as they were
        corners = torch.cat([decoyed.boxes[i], decoyed.decoy_boxes[i]])[:, :2]
        gaps = (corners[:, None] - corners[None]).abs().amax(-1) + 28 * torch.eye(10)
        assert (gaps >= 28).all()  # no decoy overlaps a digit or another decoy
        for x, y in decoyed.decoy_boxes[i, :, :2].long().tolist():
            patch = after[i, y:y + 28, x:x + 28]
            assert patch.sum() > 0
            if kind == "lookalikes":  # a 3, 4 or 7 of the split mirrored or turned: its ink is a digit's
                turned = {bytes(p.flip(-1).numpy()) for p in pool} | {bytes(p.flip(-1, -2).numpy()) for p in pool}
                assert bytes(patch.numpy()) in turned
    assert plain.sha256() != decoyed.sha256()
    assert decoyed.describe()["task"] == f"megapixel_{kind}_majority" and decoyed.describe()["decoys"] == kind
    assert "decoys" not in plain.describe()  # the plain set's card, as recorded before decoys existed


def test_blobs_outshine_every_digit_in_the_proxy_and_lookalikes_do_not(mnist_root):
    """In a 128² proxy of 1500² canvases, the brightest pixel over every blob is above the brightest over
    any digit on nearly every canvas (an ink prior ranks the blobs first); lookalikes are as bright as digits."""
    def brightest(sample, boxes):
        proxy = sample.images.source().proxy(128)[:, 0]
        cells = (boxes * 128 / sample.config.side)
        return torch.tensor([[proxy[i, int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))].max()
                              for x0, y0, x1, y1 in cells[i].tolist()] for i in range(len(sample))])

    for kind in megapixel_decoys.KINDS[1:]:
        sample = megapixel.generate("val", n=12, config=megapixel.MegapixelConfig(decoys=kind), root=mnist_root)
        digits, decoys = brightest(sample, sample.boxes), brightest(sample, sample.decoy_boxes)
        if kind == "blobs":
            assert (decoys.amin(1) > digits.amax(1)).float().mean() >= 11 / 12
        else:
            assert abs(decoys.median() - digits.median()) < 0.05
            assert decoys.max() > digits.median() > decoys.min()


def test_decoy_shapes():
    rng = np.random.default_rng(0)
    blobs = megapixel_decoys.blobs(rng, 200)
    ink = blobs.astype(float).sum((1, 2)) / 255
    assert blobs.shape == (200, 28, 28) and ink.min() > 250  # a median MNIST digit holds about 100
    assert ((blobs == 0) | (blobs >= 204)).all()
    digits = rng.integers(0, 256, size=(50, 28, 28)).astype(np.uint8)
    glyphs = megapixel_decoys.lookalikes(digits, rng)
    mirrored = (glyphs == digits[:, :, ::-1]).all((1, 2))
    turned = (glyphs == digits[:, ::-1, ::-1]).all((1, 2))
    assert (mirrored ^ turned).all() and 10 < mirrored.sum() < 40
    with pytest.raises(ValueError, match="unknown Megapixel MNIST decoys 'dots'"):
        megapixel.MegapixelConfig(decoys="dots")


def test_decoy_sets_are_stored_checked_and_trained_on_as_tasks(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setattr(megapixel, "SIZES", {"train": 4, "val": 3, "test": 3})
    monkeypatch.setattr(megapixel, "DECOY_CARDS", tmp_path / "decoy_cards.json")
    monkeypatch.setattr(data, "digit_pool", lambda split, root=None, _pool=data.digit_pool: _pool(split, mnist_root))
    monkeypatch.setattr(megapixel, "data_dir", lambda: tmp_path / "data")
    for kind in ("blobs", "lookalikes"):
        config = megapixel.MegapixelConfig(decoys=kind)
        assert megapixel.default_root(config) == tmp_path / "data" / f"megapixel_mnist_{kind}"
        megapixel.prepare(config=config, record=True)
    recorded = json.loads((tmp_path / "decoy_cards.json").read_text())["sets"]
    assert sorted((c["task"], c["split"]) for c in recorded) == sorted(
        (f"megapixel_{k}_majority", s) for k in ("blobs", "lookalikes") for s in ("train", "val", "test"))
    config = megapixel.MegapixelConfig(decoys="blobs")
    assert megapixel.prepare(config=config) == [c for c in recorded if c["decoys"] == "blobs"]
    again = megapixel.load("val", megapixel.default_root(config))
    assert again.config == config and torch.equal(again.decoy_boxes, megapixel.generate("val", n=3, config=config).decoy_boxes)
    with pytest.raises(ValueError, match="holds a 1500² noise_first blobs set"):
        megapixel.prepare(megapixel.default_root(config), megapixel.MegapixelConfig(decoys="lookalikes"))

    task = get_task("megapixel_blobs_top")
    assert task.label == "top" and task.decoys == "blobs"
    batch = next(iter(task.training_stream(train_size=4, batch_size=2, seed=0)))
    assert batch["decoy_boxes"].shape == (2, 5, 4)
    summary = train_model("oracle_glimpses", "megapixel_blobs_majority", tmp_path / "run",
                          {"proxy_size": 64, "glimpses": 5, "window.min_scale": 0.02, "init_scale": 0.03},
                          {"epochs": 1, "batch_size": 4, "val_size": 3, "test_size": 3, "progress": "none"})
    windows = summary["test"]["windows"]["all"]
    assert windows["on_object"] == 1.0 and windows["on_decoy"] == 0.0  # oracle windows: on the digits


def test_window_statistics_count_the_windows_on_a_decoy():
    boxes = torch.tensor([[[10.0, 10, 38, 38]]])
    decoys = torch.tensor([[[60.0, 60, 88, 88]]])
    # windows (scale, cx, cy) on a 100² canvas: one on the digit, one on the decoy, one on neither
    windows = torch.tensor([[[0.3, -0.52, -0.52], [0.3, 0.48, 0.48], [0.2, 0.0, 0.9]]])
    stats = window_statistics(windows, boxes, 100, decoys=decoys)
    assert stats["all"]["on_object"] == pytest.approx(1 / 3, abs=1e-4)
    assert stats["all"]["on_decoy"] == pytest.approx(1 / 3, abs=1e-4)
    assert [s["on_decoy"] for s in stats["steps"]] == [0.0, 1.0, 0.0]
    assert "on_decoy" not in window_statistics(windows, boxes, 100)["all"]


def test_decoy_tasks_are_named_for_the_command_line():
    from saccadelib.names import MEGAPIXEL_TASKS, check_task

    assert {"megapixel_blobs_majority", "megapixel_lookalikes_max", "megapixel_top"} <= set(MEGAPIXEL_TASKS)
    with pytest.raises(ValueError, match="unknown task 'megapixel_dots_majority'"):
        check_task("megapixel_dots_majority")
