"""Nothing silent on the user's path: each case below once did the wrong thing without a word."""
import csv
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from saccadelib.__main__ import main
from saccadelib.model import ModelConfig
from test_folder import _folder  # one subfolder per class: bars, dots, empty

from conftest import NAMES, TINY

TINY_SET = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]


def _split(path):
    return {r["file"]: r["split"] for r in csv.DictReader(open(path))}


def test_a_rerun_on_a_changed_folder_keeps_the_saved_split_and_says_what_changed(tmp_path, capsys):
    root, out = _folder(tmp_path / "images", per_class=8), tmp_path / "run"
    train = ["train", "--images", str(root), "--out", str(out), *TINY_SET, "--train", "batch_size=4",
             "--train", "eval_batch_size=8"]
    assert main([*train, "--train", "epochs=1"]) == 0
    before = _split(out / "split.csv")
    gone = next(f for f, s in before.items() if s == "train")
    (root / gone).unlink()  # as docs/your_images.md advises for a corrupt file
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(root / "dots" / "new.png")
    capsys.readouterr()
    assert main([*train, "--train", "epochs=2"]) == 0  # resumes into the same folder
    said = capsys.readouterr().out
    after = _split(out / "split.csv")
    assert after == {f: s for f, s in before.items() if f != gone}  # nothing moved between splits
    assert "dropped" in said and gone in said and "left out" in said and "dots/new.png" in said
    skipped = (out / "skipped.csv").read_text()
    assert gone in skipped and "dots/new.png" in skipped
    # a listed image whose class changed is refused: its place in the split no longer means what it did
    from saccadelib.datasets.folder import FolderError, read_manifest, reuse_split

    rows = list(csv.DictReader(open(out / "split.csv")))
    (tmp_path / "relabelled.csv").write_text("file,label\n" + "".join(
        f"{r['file']},{'dots' if r['file'] == rows[0]['file'] else r['label']}\n" for r in rows))
    with pytest.raises(FolderError, match=f"{rows[0]['file']} was class 'bars'.*train into a new --out folder"):
        reuse_split(read_manifest(root, tmp_path / "relabelled.csv"), out / "split.csv")


def test_predicting_a_folder_writes_the_checkpoints_class_names(named_checkpoint, tmp_path):
    images = _folder(tmp_path / "images", per_class=1)
    assert main(["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert len(rows) == 3 and {r["class"] for r in rows} <= set(NAMES)


def test_a_16_bit_greyscale_image_is_scaled_by_its_range_not_clipped(tmp_path):
    import tifffile

    from saccadelib.sources import FileSource, ImageFileError

    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    tifffile.imwrite(tmp_path / "ramp.tif", ramp)
    for name in ("ramp.png", "ramp.tif"):
        proxy = FileSource(tmp_path / name, channels=1).proxy(32)
        assert proxy.mean().item() == pytest.approx(0.5, abs=0.01)  # clipped at 8 bits it read as 0.99
        assert proxy.min().item() < 0.02
    tifffile.imwrite(tmp_path / "float.tif", np.full((32, 32), 3.0, np.float32))
    with pytest.raises(ImageFileError, match="outside 0..1: rescale it"):
        FileSource(tmp_path / "float.tif", channels=1).proxy(16)


def test_an_overlay_never_overwrites_the_input(named_checkpoint, tmp_path, capsys):
    image = _folder(tmp_path / "images", per_class=1) / "bars" / "0.png"
    before = image.read_bytes()
    assert main(["predict", str(image), "--checkpoint", str(named_checkpoint), "--overlay", str(image)]) == 2
    assert "is the input image itself" in capsys.readouterr().err and image.read_bytes() == before


def test_predicting_a_folder_leaves_no_stale_outputs_and_never_reads_its_own_overlays(named_checkpoint, tmp_path, capsys):
    images = _folder(tmp_path / "images", per_class=1)
    out = images / "predicted"  # inside the folder it reads
    command = ["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(out), "--overlays"]
    assert main(command) == 0 and main(command) == 0  # the second call does not read the first's overlays
    assert len(list(csv.DictReader(open(out / "predictions.csv")))) == 3
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not an image")
    assert main(["predict", str(broken), "--checkpoint", str(named_checkpoint), "--out", str(out)]) == 2
    assert "none of the 1 image files" in capsys.readouterr().err
    assert not (out / "predictions.csv").exists()  # not the earlier call's rows: none read, none written
    assert "a.png" in (out / "skipped.csv").read_text()


def test_evaluate_refuses_repeats_reads_names_not_indices_and_says_when_a_csv_is_empty(named_checkpoint, tmp_path,
                                                                                      capsys):
    import saccadelib

    images = _folder(tmp_path / "images", per_class=1)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nbars/0.png,bars\ndots/0.png,dots\nbars/0.png,bars\n")
    with pytest.raises(ValueError, match="line 4: bars/0.png is listed again"):
        saccadelib.score_folder(named_checkpoint, images, labels)
    labels.write_text("file,label\nbars/0.png,0\ndots/0.png,1\n")
    with pytest.raises(ValueError, match="label '0' is not a class of the model's 3 class names.*--label-indices"):
        saccadelib.score_folder(named_checkpoint, images, labels)
    by_index = saccadelib.score_folder(named_checkpoint, images, labels, label_indices=True)
    assert [r["label"] for r in by_index["predictions"]] == ["bars", "dots"]
    assert main(["evaluate", "--checkpoint", str(named_checkpoint), "--images", str(images), "--labels", str(labels),
                 "--label-indices"]) == 0
    labels.write_text("file,label\n")
    with pytest.raises(ValueError, match="has its header but no rows"):
        saccadelib.score_folder(named_checkpoint, images, labels)


def test_non_finite_settings_are_refused_before_training(tmp_path, capsys):
    from saccadelib.config import apply_overrides
    from saccadelib.train_config import TrainConfig

    for text in ("inf", "nan", "-inf"):
        with pytest.raises(ValueError, match="setting lr: expected a finite number"):
            apply_overrides(TrainConfig(), {"lr": text})
    with pytest.raises(ValueError, match="setting loss.kl_weight: expected a finite number"):
        apply_overrides(ModelConfig(), {"loss.kl_weight": "nan"})
    with pytest.raises(ValueError, match="lr must be a finite number"):
        TrainConfig(lr=float("inf"))
    assert main(["train", "--task", "sum", "--out", str(tmp_path / "r"), "--train", "lr=inf"]) == 2
    assert "finite" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_file_that_is_not_a_checkpoint_gets_one_line(tmp_path, capsys):
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    torch.save({"model_meta": {"name": "saccade"}, "model": {}, "evil": Image.new("L", (2, 2))}, tmp_path / "pickled.pt")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    for name in ("random.pt", "pickled.pt"):
        assert main(["predict", str(image), "--checkpoint", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert "is not a checkpoint saccadelib can read" in err and "weights_only" not in err
        assert len(err.strip().splitlines()) == 1


def test_a_corrupt_mnist_file_is_reported_before_it_is_replaced(tmp_path, monkeypatch, caplog):
    from saccadelib.datasets import mnist

    raw = mnist.raw_folder(tmp_path)
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"corrupt")
    fetched = []
    monkeypatch.setattr(mnist, "_try_torchvision_download", lambda root: fetched.append(root) or True)
    with caplog.at_level(logging.WARNING, logger="saccadelib.datasets.mnist"):
        mnist.prepare_mnist(tmp_path)
    assert fetched and "t10k-labels-idx1-ubyte" in caplog.text and "fetching MNIST again" in caplog.text
