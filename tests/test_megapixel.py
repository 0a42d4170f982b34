"""Sparse canvases, Megapixel MNIST and native-size two-digit canvases: geometry against the dense path,
the published definition, storage and the task interface."""
import hashlib
import json

import numpy as np
import pytest
import torch

from saccadelib.datasets import twodigit as data, megapixel, megapixel_png
from saccadelib.sources import TensorSource
from saccadelib.datasets.sparse import SparseImages
from saccadelib.tasks import get_task


def _random_sparse(n=3, side=150, seed=0):
    gen = torch.Generator().manual_seed(seed)
    dense = torch.zeros(n, side, side, dtype=torch.uint8)
    for i in range(n):
        for _ in range(6):
            y, x = torch.randint(0, side - 28, (2,), generator=gen)
            patch = torch.randint(1, 256, (28, 28), generator=gen, dtype=torch.uint8)
            dense[i, y:y + 28, x:x + 28] = patch * (torch.rand(28, 28, generator=gen) < 0.3)
    return dense


def test_sparse_images_round_trip_slice_and_hash_ignore_the_padding():
    dense = _random_sparse()
    images = SparseImages.from_dense(dense)
    assert torch.equal(images.dense(), dense)
    assert images.index.dtype == torch.int32
    part = images[1:2]
    assert part.index.shape[1] == int((dense[1] > 0).sum())  # the others' longer padding is dropped
    assert torch.equal(part.dense(), dense[1:2])
    whole, alone = hashlib.sha256(), hashlib.sha256()
    images[1:2].digest(whole)
    SparseImages.from_dense(dense[1:2]).digest(alone)
    assert whole.hexdigest() == alone.hexdigest()
    with pytest.raises(ValueError, match="once per image"):
        SparseImages.from_pixels([(np.array([3, 3]), np.array([1, 2]))], side=10)


def test_sparse_source_reads_what_the_dense_canvas_gives():
    dense = _random_sparse()
    sparse, reference = SparseImages.from_dense(dense).source(), TensorSource(dense.unsqueeze(1).float() / 255)
    assert torch.equal(sparse.dense(), dense.unsqueeze(1).float() / 255)  # the canvas itself, for an export
    for size in (16, 32, 45):
        assert torch.allclose(sparse.proxy(size), reference.proxy(size), atol=1e-6)
    # windows inside, across the border and at the smallest scales, with and without the prefilter
    windows = torch.tensor([[[0.1, 0.2, -0.3], [0.3, -0.9, 0.95], [0.02, 0.0, 0.0]],
                            [[1.0, 0.0, 0.0], [0.05, 0.5, 0.5], [0.2, -1.0, -1.0]],
                            [[0.2, 0.7, -0.7], [0.3, 0.0, 0.0], [0.12, 0.33, 0.1]]], requires_grad=True)
    for k in (1, 2, 3):
        ours, theirs = sparse.crop(windows, 16, k), reference.crop(windows, 16, k)
        assert torch.equal(_in_small_chunks(sparse, windows, k), ours)  # tiles built a few at a time: the same
        assert torch.allclose(ours, theirs, atol=1e-4)
        g_ours, = torch.autograd.grad(ours.square().sum(), windows)
        g_theirs, = torch.autograd.grad(theirs.square().sum(), windows)
        assert torch.allclose(g_ours, g_theirs, rtol=1e-3, atol=1e-3 * float(g_theirs.abs().max()))


def _in_small_chunks(source, windows, k):
    from saccadelib.datasets import sparse as module

    saved, module.TILE_BUDGET = module.TILE_BUDGET, 1
    try:
        return source.crop(windows, 16, k)
    finally:
        module.TILE_BUDGET = saved


def test_megapixel_canvases_follow_the_definition(mnist_root):
    config = megapixel.MegapixelConfig(side=400)
    sample = megapixel.generate("val", n=6, config=config, root=mnist_root)
    pool, classes = data.digit_pool("val", mnist_root)
    canvases = sample.images.dense()
    for i in range(len(sample)):
        digits = sample.digits[i].tolist()
        majority = int(sample.labels["majority"][i])
        assert digits.count(majority) == 3 and all(digits.count(d) < 3 for d in set(digits) - {majority})
        corners = sample.boxes[i, :, :2].long()
        for a in range(5):
            x, y = corners[a].tolist()
            # noise first: every digit is intact, and it is the MNIST digit its source names
            assert torch.equal(canvases[i, y:y + 28, x:x + 28], pool[sample.source[i, a]])
            assert classes[sample.source[i, a]] == digits[a]
            for b in range(a):
                assert (corners[a] - corners[b]).abs().max() >= 28  # digit boxes never overlap
        assert sample.labels["max"][i] == max(digits)
        assert sample.labels["top"][i] == digits[int(corners[:, 1].argmin())]
        assert sample.labels["multi"][i].nonzero().view(-1).tolist() == sorted(set(digits))
    # the listed order says nothing of the label: the majority class is not always listed first
    assert any(sample.digits[i, 0] != sample.labels["majority"][i] for i in range(len(sample)))
    # outside the digits' boxes, only noise strokes: each at 80-100% intensity, and some on every canvas
    outside = torch.ones_like(canvases, dtype=torch.bool)
    for i in range(len(sample)):
        for x, y in sample.boxes[i, :, :2].long().tolist():
            outside[i, y:y + 28, x:x + 28] = False
    noise = canvases[outside & (canvases > 0)]
    assert noise.min() >= 204 and all((canvases[i][outside[i]] > 0).sum() > 100 for i in range(len(sample)))
    bank = megapixel.noise_bank(np.random.default_rng(0))
    assert bank.shape == (50, 28, 28) and bank[bank > 0].min() >= 204


def test_each_canvas_gets_fifty_noise_strokes_from_its_splits_bank(mnist_root, monkeypatch):
    """Fifty placements per canvas, each one of the bank's patterns, pasted whole before the digits; the
    canvas outside the digits' boxes is exactly what they leave."""
    pasted = []
    paste = megapixel._paste
    monkeypatch.setattr(megapixel, "_paste", lambda patches, offsets, side: pasted.append(patches) or
                        paste(patches, offsets, side))
    config = megapixel.MegapixelConfig(side=400)
    sample = megapixel.generate("val", n=3, config=config, root=mnist_root)
    bank = megapixel.noise_bank(megapixel._rng("val", megapixel.SEEDS["val"], 0))
    canvases = sample.images.dense()
    for i, ((strokes, at), (digits, corners)) in enumerate(pasted):
        assert len(strokes) == len(at) == 50 and len(digits) == 5
        assert all(any(np.array_equal(s, b) for b in bank) for s in strokes)
        assert ((at >= 0) & (at <= 400 - 28)).all()
        noise_only = torch.zeros(400 * 400, dtype=torch.uint8)
        index, values = paste([(strokes, at)], np.add.outer(np.arange(28) * 400, np.arange(28)).ravel(), 400)
        noise_only[torch.from_numpy(index)] = torch.from_numpy(values)
        noise_only = noise_only.view(400, 400)
        outside = torch.ones(400, 400, dtype=torch.bool)
        for x, y in corners.tolist():
            outside[y:y + 28, x:x + 28] = False
        assert torch.equal(canvases[i][outside], noise_only[outside])


def test_megapixel_generation_is_deterministic_and_canvas_i_does_not_depend_on_n(mnist_root):
    config = megapixel.MegapixelConfig(side=300)
    five = megapixel.generate("train", n=5, config=config, root=mnist_root)
    three = megapixel.generate("train", n=3, config=config, root=mnist_root)
    assert torch.equal(five.images[:3].dense(), three.images.dense())
    assert five.sha256() == megapixel.generate("train", n=5, config=config, root=mnist_root).sha256()
    assert five.sha256() != megapixel.generate("test", n=5, config=config, root=mnist_root).sha256()


def test_digits_first_lets_the_noise_cover_digit_pixels(mnist_root):
    # dense canvases, few pixels: strokes land on digits often enough to see the order matter
    noise_first = megapixel.generate("val", n=8, config=megapixel.MegapixelConfig(side=150), root=mnist_root)
    digits_first = megapixel.generate("val", n=8, config=megapixel.MegapixelConfig(side=150, order="digits_first"),
                                      root=mnist_root)
    pool, _ = data.digit_pool("val", mnist_root)
    covered = 0
    for sample in (noise_first, digits_first):
        canvases = sample.images.dense()
        for i in range(len(sample)):
            for a in range(5):
                x, y = sample.boxes[i, a, :2].long().tolist()
                covered += sample is digits_first and not torch.equal(canvases[i, y:y + 28, x:x + 28],
                                                                      pool[sample.source[i, a]])
    assert covered > 0


def test_a_full_size_canvas_has_about_four_thousand_pixels(mnist_root):
    sample = megapixel.generate("test", n=2, root=mnist_root)
    assert sample.images.side == 1500
    assert 2_500 < sample.describe()["nonzero_pixels_mean"] < 6_000


def test_stored_sets_round_trip_and_are_checked_against_their_hashes(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setattr(megapixel, "SIZES", {"train": 4, "val": 3, "test": 3})
    with pytest.raises(FileNotFoundError, match="data megapixel"):
        megapixel.load("val", tmp_path / "none")
    cards_path = tmp_path / "cards.json"
    monkeypatch.setattr(data, "digit_pool", lambda split, root=None, _pool=data.digit_pool: _pool(split, mnist_root))
    cards = megapixel.prepare(tmp_path / "sets", record=True, cards_path=cards_path)
    assert [c["split"] for c in cards] == ["train", "val", "test"]
    again = megapixel.load("val", tmp_path / "sets")
    assert again.sha256() == megapixel.generate("val", n=3).sha256()
    assert megapixel.prepare(tmp_path / "sets", cards_path=cards_path) == cards
    recorded = json.loads(cards_path.read_text())
    recorded["sets"][1]["sha256"] = "0" * 64
    cards_path.write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match="the fixed val set differs"):
        megapixel.prepare(tmp_path / "sets", cards_path=cards_path)


def _stored_sets(root, mnist_root, monkeypatch, sizes: dict, side: int):
    """Small Megapixel sets of ``side``² canvases saved under ``root`` (``sizes``: canvases per split),
    drawn from the real MNIST digits."""
    monkeypatch.setattr(data, "digit_pool", lambda split, root=None, _pool=data.digit_pool: _pool(split, mnist_root))
    for split, n in sizes.items():
        megapixel.save(megapixel.generate(split, n=n, config=megapixel.MegapixelConfig(side=side)),
                       megapixel.set_path(split, root))
    return root


def test_megapixel_task_streams_sparse_batches_in_a_seeded_order(mnist_root, tmp_path, monkeypatch):
    root = _stored_sets(tmp_path / "sets", mnist_root, monkeypatch, {"train": 6, "val": 3, "test": 3}, side=300)
    task = get_task("megapixel_max", data_root=root)
    stream = task.training_stream(train_size=4, batch_size=2, seed=0)
    stream.set_epoch(1)
    batches = list(stream)
    assert len(stream) == len(batches) == 2
    assert batches[0]["image"].proxy(32).shape == (2, 1, 32, 32)
    labels = torch.cat([b["label"] for b in batches])
    stream.set_epoch(1)
    assert torch.equal(labels, torch.cat([b["label"] for b in stream]))
    val = task.evaluation_set("val")
    assert torch.equal(val.as_dict()["label"], val.labels["max"])
    with pytest.raises(ValueError, match="read at its own size"):
        get_task("megapixel_top", data_root=root, canvas_side=1000)


def test_native_size_canvases_are_kept_sparse_with_the_same_pixels(mnist_root, monkeypatch):
    sparse = data.generate("identification", "val", 4, seed=7, canvas=300, root=mnist_root)
    assert isinstance(sparse.canvases, SparseImages)
    monkeypatch.setattr(data, "DENSE_LIMIT", 1000)
    dense = data.generate("identification", "val", 4, seed=7, canvas=300, root=mnist_root)
    assert torch.equal(sparse.canvases.dense(), dense.canvases)
    batch = sparse.as_dict(0, 2)
    assert torch.allclose(batch["image"].proxy(32), TensorSource(dense.as_dict(0, 2)["image"]).proxy(32), atol=1e-6)


def test_a_native_size_canvas_is_not_also_upsampled():
    with pytest.raises(ValueError, match="leave image_side unset"):
        get_task("identification", image_side=2528, canvas_side=1000)


@pytest.mark.parametrize("model", ["saccade", "oracle_glimpses", "proxy_cnn"])
def test_models_train_a_batch_on_megapixel_canvases(model, mnist_root, tmp_path, monkeypatch):
    from saccadelib.train import train_model

    root = _stored_sets(tmp_path / "sets", mnist_root, monkeypatch, {"train": 8, "val": 4, "test": 4}, side=600)
    glimpses = {} if model == "proxy_cnn" else {"glimpses": 6, "window.min_scale": 0.05, "init_scale": 0.1}
    summary = train_model(model, "megapixel_majority", tmp_path / "run", {"proxy_size": 64, **glimpses},
                          {"epochs": 1, "batch_size": 4, "val_size": 4, "test_size": 4, "data_root": str(root),
                           "progress": "none"})
    assert summary["epochs_run"] == 1 and 0 <= summary["test"]["accuracy"] <= 1
    if model == "oracle_glimpses":  # six glimpses on five digits: every digit is held
        assert summary["test"]["both_digits_hit"] == 1.0  # the key names the two-digit case: every object


def test_saccade_trains_on_native_size_digits_on_a_large_canvas(mnist_root, tmp_path):
    from saccadelib.train import train_model

    summary = train_model("saccade", "identification", tmp_path / "run", {"window.min_scale": 0.05},
                          {"epochs": 1, "train_size": 8, "batch_size": 4, "val_size": 4, "test_size": 4,
                           "canvas_side": 1000, "progress": "none"})
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert summary["epochs_run"] == 1 and config["datasets"]["val"]["canvas"] == 1000


def test_a_model_scores_the_same_through_png_files_as_in_memory(mnist_root, tmp_path, monkeypatch):
    from saccadelib import inference
    from saccadelib.train import train_model

    root = _stored_sets(tmp_path / "sets", mnist_root, monkeypatch, {"train": 8, "val": 4, "test": 6}, side=300)
    train_model("saccade", "megapixel_top", tmp_path / "run", {"proxy_size": 32, "window.min_scale": 0.1},
                {"epochs": 1, "batch_size": 4, "val_size": 4, "test": False, "data_root": str(root), "progress": "none"})
    labels = megapixel_png.export_png("test", tmp_path / "png", label="top", root=root)
    result = inference.score_folder(tmp_path / "run" / "best.pt", tmp_path / "png", labels, tmp_path / "scored")
    model, _ = inference.load_model(tmp_path / "run" / "best.pt")
    test = megapixel.stored_set("test", root).with_label("top")
    in_memory = model.evaluate_batch(test.as_dict())
    assert [int(r["prediction"]) for r in result["predictions"]] == in_memory["logits"].argmax(-1).tolist()
    assert result["accuracy"] == pytest.approx(float((in_memory["logits"].argmax(-1) == test.labels["top"]).double().mean()))
    assert (tmp_path / "scored" / "predictions.csv").read_text().startswith("file,label,prediction,correct")
    confusion = (tmp_path / "scored" / "confusion.csv").read_text().splitlines()
    assert confusion[0] == "true \\ predicted,0,1,2,3,4,5,6,7,8,9" and len(confusion) == 11
    assert json.loads((tmp_path / "scored" / "metrics.json").read_text())["n"] == 6


def test_evaluate_names_what_is_wrong_with_the_labels(tmp_path):
    from saccadelib.inference import read_labels

    (tmp_path / "a.png").write_bytes(b"")
    cases = {"name,class\na.png,1\n": "header row naming the columns file and label",
             "file,label\nb.png,1\n": "line 2: no image",
             "file,label\na.png,cat\n": "label 'cat' is not a class of the model's 10 class names"}
    for text, message in cases.items():
        (tmp_path / "labels.csv").write_text(text)
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            read_labels(tmp_path / "labels.csv", tmp_path, [str(k) for k in range(10)])
    (tmp_path / "labels.csv").write_text("file,label\na.png,7\n")
    assert read_labels(tmp_path / "labels.csv", tmp_path, [str(k) for k in range(10)]) == [(tmp_path / "a.png", 7)]


def test_the_exported_manifest_holds_every_split_and_trains_through_the_files(mnist_root, tmp_path, monkeypatch):
    from saccadelib.datasets.folder import read_manifest
    from saccadelib.train import train_model

    root = _stored_sets(tmp_path / "sets", mnist_root, monkeypatch, {"train": 6, "val": 3, "test": 3}, side=200)
    manifest_path = megapixel_png.export_manifest(tmp_path / "png", root=root)
    manifest = read_manifest(tmp_path / "png", manifest_path)
    assert manifest.splits.count("train") == 6 and manifest.splits.count("test") == 3
    stored = megapixel.stored_set("val", root)
    val = [int(manifest.class_names[y]) for y, s in zip(manifest.labels, manifest.splits) if s == "val"]
    assert val == stored.labels["majority"].tolist()  # class "d" is digit d
    summary = train_model("saccade", "folder", tmp_path / "run", {"proxy_size": 32, "window.min_scale": 0.1},
                          {"epochs": 1, "batch_size": 3, "workers": 1, "data_root": str(tmp_path / "png"),
                           "manifest": str(manifest_path), "progress": "none"})
    assert summary["epochs_run"] == 1
