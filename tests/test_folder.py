import json

import numpy as np
import pytest
import torch
from PIL import Image

from saccadelib.__main__ import main
from saccadelib.datasets.folder import FolderError, read_manifest, stratified_split

TINY = ["--set", "hidden=16", "--set", "proxy_features=16", "--set", "crop_features=16", "--set", "latent_features=8",
        "--set", "width=8", "--set", "rnn_layers=1", "--set", "glimpses=2"]


def _folder(root, classes=("bars", "dots", "empty"), per_class=5, size=(80, 64), mode="L"):
    """One subfolder per class; each class's images carry its own pattern."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            pixels = rng.integers(0, 40, size=(size[1], size[0]), dtype=np.uint8)
            pixels[:, c * 10:c * 10 + 6] = 255
            Image.fromarray(pixels).convert(mode).save(root / name / f"{k}.png")
    return root


def test_a_folder_of_classes_is_split_per_class_and_reproducibly(tmp_path):
    manifest = read_manifest(_folder(tmp_path / "images", per_class=10), seed=3)
    assert manifest.class_names == ("bars", "dots", "empty") and len(manifest.files) == 30
    for c in range(3):
        splits = [s for s, y in zip(manifest.splits, manifest.labels) if y == c]
        assert (splits.count("val"), splits.count("test"), splits.count("train")) == (2, 2, 6)  # 15% each, rounded
    assert read_manifest(tmp_path / "images", seed=3) == manifest
    assert read_manifest(tmp_path / "images", seed=4).splits != manifest.splits
    assert stratified_split([0, 0, 0, 1, 1, 1], 0).count("train") == 2


def test_bad_folders_get_one_line_errors(tmp_path):
    with pytest.raises(FolderError, match="not found"):
        read_manifest(tmp_path / "missing")
    _folder(tmp_path / "one", classes=("only",))
    with pytest.raises(FolderError, match="needs at least two"):
        read_manifest(tmp_path / "one")
    _folder(tmp_path / "empty", classes=("a", "b"))
    (tmp_path / "empty" / "c").mkdir()
    with pytest.raises(FolderError, match="holds no image files"):
        read_manifest(tmp_path / "empty")
    _folder(tmp_path / "small", classes=("a", "b"), per_class=2)
    with pytest.raises(FolderError, match="at least 3 per class"):
        read_manifest(tmp_path / "small")
    root = _folder(tmp_path / "csv", classes=("a", "b"))
    (root / "labels.csv").write_text("file,label,split\na/0.png,a,train\nb/0.png,b,holdout\n")
    with pytest.raises(FolderError, match="split 'holdout' is not one of"):
        read_manifest(root, root / "labels.csv")
    (root / "labels.csv").write_text("file,label\na/0.png,a\nb/9.png,b\n")
    with pytest.raises(FolderError, match="line 3: no image file"):
        read_manifest(root, root / "labels.csv")


def test_unreadable_files_are_skipped_and_listed(tmp_path):
    root = _folder(tmp_path / "images", classes=("a", "b"))
    (root / "a" / "broken.png").write_bytes(b"not an image")
    manifest = read_manifest(root)
    assert "a/broken.png" not in manifest.files and len(manifest.files) == 10
    assert manifest.skipped[0][0] == "a/broken.png" and "a/broken.png" in manifest.skipped_text()


def test_train_on_a_folder_keeps_its_classes_split_and_predicts_their_names(tmp_path, capsys):
    import saccadelib

    root = _folder(tmp_path / "images", per_class=6)
    out = tmp_path / "run"
    assert main(["train", "--images", str(root), "--out", str(out), *TINY, "--train", "epochs=1",
                 "--train", "batch_size=4", "--train", "eval_batch_size=4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n"] == 3 and metrics["test_dataset"]["classes"] == ["bars", "dots", "empty"]
    split = (out / "split.csv").read_text().splitlines()
    assert split[0] == "file,label,split" and len(split) == 19
    model = saccadelib.load(out / "best.pt")
    assert model.meta["class_names"] == ["bars", "dots", "empty"]
    result = saccadelib.predict(root / "dots" / "0.png", model)
    assert set(result["probabilities"]) == {"bars", "dots", "empty"}
    held_out = saccadelib.score_folder(model, root, out / "split.csv", split="test")
    assert held_out["n"] == 3 and [r["label"] for r in held_out["predictions"]] == ["bars", "dots", "empty"]
    confusion = torch.tensor(held_out["confusion"])  # rows: true class; columns: predicted
    assert confusion.sum(1).tolist() == [1, 1, 1] and int(confusion.trace()) == held_out["correct"]
    for r in held_out["predictions"]:
        assert confusion[held_out["class_names"].index(r["label"]), held_out["class_names"].index(r["prediction"])] >= 1
    (root / "labels.csv").write_text("file,label,split\n" + "\n".join(
        f"{c}/{k}.png,{c},{'train' if k < 4 else 'val' if k < 5 else 'test'}" for c in ("bars", "dots", "empty")
        for k in range(6)) + "\n")
    assert main(["train", "--images", str(root), "--manifest", str(root / "labels.csv"), "--out", str(tmp_path / "m"),
                 *TINY, "--train", "epochs=1", "--train", "batch_size=4"]) == 0
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["test"]["n"] == 3


def test_colour_images_need_an_explicit_conversion_for_a_greyscale_model(tmp_path, capsys):
    root = _folder(tmp_path / "images", classes=("a", "b"), mode="RGB")
    assert main(["train", "--images", str(root), "--out", str(tmp_path / "r"), *TINY, "--train", "epochs=1"]) != 0
    assert "is colour (mode RGB)" in capsys.readouterr().err
    assert main(["train", "--images", str(root), "--out", str(tmp_path / "r2"), *TINY, "--train", "epochs=1",
                 "--train", "convert_channels=true"]) == 0
    assert main(["train", "--images", str(root), "--task", "sum", "--out", str(tmp_path / "r3")]) != 0
    assert "drop --task sum" in capsys.readouterr().err
    assert torch.load(tmp_path / "r2" / "best.pt", weights_only=True)["model_meta"]["class_names"] == ["a", "b"]


def test_workers_read_the_same_batches_ahead_with_their_proxies_and_decodes(tmp_path):
    from torch.utils.data import DataLoader

    from saccadelib.datasets.folder import FolderSet, FolderStream

    data = FolderSet(read_manifest(_folder(tmp_path / "images", per_class=6)), "train", channels=1)
    stream = FolderStream(data, batch_size=3, seed=1, proxy_size=16)
    stream.set_epoch(2)
    here = list(stream)
    ahead = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert len(here) == len(ahead) == len(stream) == 4
    key = sorted(range(4), key=lambda b: ahead[b]["image"].paths[0])  # workers interleave their batches
    for mine, theirs in zip(sorted(here, key=lambda b: b["image"].paths[0]), (ahead[b] for b in key)):
        assert mine["image"].paths == theirs["image"].paths and torch.equal(mine["label"], theirs["label"])
        assert torch.equal(mine["image"].proxy(16), theirs["image"].proxy(16))
        crops = theirs["image"].crop(torch.tensor([[[0.4, 0.0, 0.0]]]).repeat(len(theirs["label"]), 1, 1), 8)
        assert crops.shape[:2] == (len(theirs["label"]), 1)
        assert all(s.decodes == 1 for s in theirs["image"].sources)  # the worker's decode served the crops
    unread = FolderStream(data, batch_size=3, seed=1)  # no proxy size: nothing read ahead
    assert next(iter(unread))["image"].stored_proxies is None
