"""Iterative patch selection: selection iteration by iteration keeps the image's best-scored patches, black
patches share one embedding exactly, and the model trains through the shared loop."""
import pytest
import torch

from saccadelib.baselines.ips import IPSConfig, IterativePatchSelection, grid_positions
from saccadelib.baselines.resnets import tile_windows
from saccadelib.registry import build, config_for
from saccadelib.sources import TensorSource

SMALL = dict(patch=10, memory=6, iteration=7, encoder="small", dim=16, heads=1, shown=3)


def _images(n=2, side=60, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, side, side)
    for i in range(n):  # a few inked squares on black: most patches are blank
        for _ in range(5):
            y, x = torch.randint(0, side - 8, (2,), generator=gen).tolist()
            images[i, 0, y:y + 8, x:x + 8] = torch.rand(8, 8, generator=gen)
    return images


def _all_scores(model, images):
    """Every patch's raw attention logit at once (one head), in the grid's order."""
    cfg = model.cfg
    grid = tile_windows(images.shape[-1], cfg.patch)
    index = torch.arange(len(grid)).expand(len(images), -1)
    patches = TensorSource(images).crop(grid[index], cfg.patch, supersample=1)
    keys = model.embed(patches, index, grid_positions(images.shape[-1] // cfg.patch, cfg.dim))
    attention = model.pool.attention
    q = attention.in_proj_weight[:cfg.dim] @ model.pool.query[0, 0] + attention.in_proj_bias[:cfg.dim]
    k = keys @ attention.in_proj_weight[cfg.dim:2 * cfg.dim].T + attention.in_proj_bias[cfg.dim:2 * cfg.dim]
    return k @ q


def test_selection_step_by_step_keeps_the_best_scored_patches_of_the_whole_image():
    """With one head, a patch's share of the attention ranks as its logit in any set, so the memory kept
    over the iterations is the top ``memory`` of all 36 patches."""
    torch.manual_seed(0)
    model = IterativePatchSelection(IPSConfig(**SMALL)).eval()
    images = _images()
    grid = tile_windows(60, 10)
    with torch.no_grad():
        chosen = model.select(TensorSource(images), grid, grid_positions(6, 16))
        best = _all_scores(model, images).topk(6, dim=1).indices
    assert chosen.shape == (2, 6)
    assert torch.equal(chosen.sort(1).values, best.sort(1).values)


def test_black_patches_share_one_embedding_exactly():
    torch.manual_seed(0)
    model = IterativePatchSelection(IPSConfig(**SMALL)).eval()
    grid = tile_windows(60, 10)
    index = torch.arange(len(grid)).expand(2, -1)
    patches = TensorSource(_images()).crop(grid[index], 10, supersample=1)
    blank = model.encoder(torch.zeros(1, 1, 10, 10))
    with torch.no_grad():
        shortcut = model._encoded(patches, blank)
        every = model.encoder(patches.flatten(0, 1)).view(2, 36, -1)
    assert (patches.flatten(2).amax(-1) == 0).float().mean() > 0.3  # the shortcut is exercised
    assert torch.allclose(shortcut, every, atol=1e-5)


def test_selection_leaves_the_training_mode_as_it_found_it_and_training_reaches_every_part():
    torch.manual_seed(0)
    model = IterativePatchSelection(IPSConfig(**SMALL, n_classes=3)).train()
    batch = {"image": _images(4), "label": torch.tensor([0, 1, 2, 0])}
    loss, logs = model.training_loss(batch)
    assert model.training and all(m.training for m in model.modules())
    loss.backward()
    for part in (model.encoder, model.pool, model.head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    out = model.eval().evaluate_batch(batch)
    assert out["logits"].shape == (4, 3) and out["windows"].shape == (4, 3, 3)
    assert torch.isclose(out["windows"][..., 0], torch.tensor(10 / 60)).all()  # grid patches, reported best first


def test_positions_tell_every_patch_apart():
    table = grid_positions(5, 16)
    assert table.shape == (25, 16)
    assert torch.cdist(table, table).add(torch.eye(25)).min() > 0.1


def test_ips_is_a_registered_baseline_with_checked_settings():
    cfg = config_for("ips", 10, {"encoder": "small"})
    model = build("ips", cfg)
    assert isinstance(model, IterativePatchSelection) and model.cfg.memory == 100
    with pytest.raises(ValueError, match="unknown IPS encoder 'vit'"):
        IPSConfig(encoder="vit")
    with pytest.raises(ValueError, match="divisible by heads"):
        IPSConfig(dim=20, heads=8)
    paper = IterativePatchSelection(IPSConfig())  # ResNet-18 through its second stage: 128 channels
    assert paper.encoder(torch.zeros(2, 1, 50, 50)).shape == (2, 128)


def test_ips_trains_and_scores_on_megapixel_canvases(mnist_root, tmp_path, monkeypatch):
    from saccadelib.datasets import megapixel
    from saccadelib.datasets import twodigit as data
    from saccadelib.train import train_model

    monkeypatch.setattr(data, "digit_pool", lambda split, root=None, _pool=data.digit_pool: _pool(split, mnist_root))
    for split, n in {"train": 8, "val": 4, "test": 4}.items():
        megapixel.save(megapixel.generate(split, n=n, config=megapixel.MegapixelConfig(side=300)),
                       megapixel.set_path(split, tmp_path / "sets"))
    summary = train_model("ips", "megapixel_majority", tmp_path / "run",
                          {"encoder": "small", "dim": 16, "heads": 2, "memory": 8, "iteration": 10},
                          {"epochs": 1, "batch_size": 4, "val_size": 4, "test_size": 4,
                           "data_root": str(tmp_path / "sets"), "progress": "none"})
    assert summary["epochs_run"] == 1 and 0 <= summary["test"]["accuracy"] <= 1
    windows = summary["test"]["windows"]["all"]  # the ten best patches of each canvas: 50 px on the 300² grid
    assert windows["side_px"]["mean"] == pytest.approx(50) and 0 <= windows["on_object"] <= 1
