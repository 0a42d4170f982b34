"""FiveK preparation, data and training on the synthetic miniature in the official layout (fivek.py)."""
import csv
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from saccadelib.datasets import fivek, fivek_miniature
from saccadelib.paths import data_dir
from saccadelib.sources import FileBatchSource, FileSource


@pytest.fixture(scope="session")
def miniature():
    """A dozen 3000×2000 synthetic photos per class (shared with the 04 notebook's smoke run)."""
    return fivek_miniature.write_miniature(data_dir() / "fivek_miniature_source")


@pytest.fixture(scope="session")
def prepared(miniature, tmp_path_factory):
    out = tmp_path_factory.mktemp("fivek") / "prepared"
    card = fivek.prepare(miniature, out, workers=2, progress=False)
    return out, card


def _index(out):
    with open(out / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_miniature_has_the_official_layout(miniature):
    lines = (miniature / "categories.txt").read_text().splitlines()
    assert len(lines) == 72 and lines[0] == "a0001,outdoor,day,sun_sky,abstract"
    subjects = fivek.read_subjects(miniature)
    assert sorted(set(subjects.values())) == sorted(fivek.SUBJECTS)
    assert fivek.photo_folders(miniature) == [miniature / "tiff16_c"]
    photo = fivek.read_photo(miniature / "tiff16_c" / "a0001.tif")  # a 16-bit RGB TIFF
    assert photo.size == (3000, 2000) and photo.mode == "RGB"


def test_preparation_writes_sizes_split_and_class_order(prepared):
    out, card = prepared
    assert card["classes"] == list(fivek.SUBJECTS) and card["prepared"] == 72 and card["skipped"] == 0
    assert card["settings"] == {"side": 2528, "proxy": 32, "aspect": "squash", "photos": "auto", "seed": 0}
    assert json.loads((out / "fivek.json").read_text()) == card
    rows = _index(out)
    assert len(rows) == 72
    for subject in fivek.SUBJECTS:  # 12 per class: 80/10/10 rounds to 10/1/1, in every class
        assert [sum(1 for r in rows if r["subject"] == subject and r["split"] == s) for s in ("train", "val", "test")] \
            == [10, 1, 1]
        assert {int(r["label"]) for r in rows if r["subject"] == subject} == {fivek.SUBJECTS.index(subject)}
    first = rows[0]
    with Image.open(out / "large" / f"{first['id']}.jpg") as img:
        assert img.size == (2528, 2528) and img.format == "JPEG"
    with Image.open(out / "proxy" / f"{first['id']}.png") as img:
        assert img.size == (32, 32) and img.mode == "RGB"
        stored = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
    # the stored proxy is what inference reads from the large image (up to 8-bit rounding)
    assert (stored - FileSource(out / "large" / f"{first['id']}.jpg").proxy(32)[0]).abs().max() <= 0.5 / 255 + 1e-6


def test_split_is_seeded_and_stratified():
    subjects = {f"a{k:04d}": fivek.SUBJECTS[k % 6] for k in range(600)}
    split = fivek.stratified_split(subjects, seed=0)
    assert split == fivek.stratified_split(subjects, seed=0) and split != fivek.stratified_split(subjects, seed=1)
    for subject in fivek.SUBJECTS:
        counts = [sum(1 for p, s in split.items() if subjects[p] == subject and s == part)
                  for part in ("train", "val", "test")]
        assert counts == [80, 10, 10]


def test_native_aspect_keeps_the_photo_shape(miniature, tmp_path):
    settings = fivek.PrepareSettings(aspect="native")
    fivek.prepare(miniature, tmp_path / "native", settings, workers=1, progress=False, limit=1)
    (row,) = _index(tmp_path / "native")
    assert (int(row["width"]), int(row["height"])) == (2528, 1685)  # 3000×2000 with its longer side at 2528


def _copy(miniature, dest, n=6):
    """The first n photos of the miniature (one per class) in a writable copy."""
    (dest / "tiff16_c").mkdir(parents=True)
    lines = (miniature / "categories.txt").read_text().splitlines()[:n]
    (dest / "categories.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        photo = line.split(",")[0]
        shutil.copyfile(miniature / "tiff16_c" / f"{photo}.tif", dest / "tiff16_c" / f"{photo}.tif")
    return dest


def test_unreadable_and_missing_photos_are_listed_and_skipped(miniature, tmp_path):
    source = _copy(miniature, tmp_path / "src")
    (source / "tiff16_c" / "a0002.tif").write_bytes(b"II*\x00 not really a tiff")
    (source / "tiff16_c" / "a0003.tif").unlink()
    card = fivek.prepare(source, tmp_path / "out", settings=fivek.PrepareSettings(side=256), workers=1,
                         progress=False)
    assert card["prepared"] == 4 and card["skipped"] == 2
    skipped = {r["id"]: r["error"] for r in csv.DictReader(open(tmp_path / "out" / "skipped.csv"))}
    assert skipped["a0003"] == "no photo file"
    assert skipped["a0002"].startswith("a0002.tif: ")
    assert {r["id"] for r in _index(tmp_path / "out")} == {"a0001", "a0004", "a0005", "a0006"}


def test_bad_distribution_errors_name_the_problem(miniature, tmp_path):
    source = _copy(miniature, tmp_path / "src")
    (source / "categories.txt").rename(source / "moved.txt")
    with pytest.raises(fivek.FiveKError, match="categories.txt is missing.*data.csail.mit.edu"):
        fivek.prepare(source, tmp_path / "out", progress=False)
    (source / "categories.txt").write_text("a0001,outdoor,day,sun_sky,vehicles\n")
    with pytest.raises(fivek.FiveKError, match=r"categories.txt:1: unknown subject 'vehicles' for a0001"):
        fivek.prepare(source, tmp_path / "out", progress=False)
    (source / "categories.txt").write_text("a0001,outdoor,nature\n")
    with pytest.raises(fivek.FiveKError, match="expected 5 comma-separated fields"):
        fivek.read_subjects(source)
    with pytest.raises(fivek.FiveKError, match="no photo folder raw_photos"):
        fivek.photo_folders(source, "raw")
    with pytest.raises(fivek.FiveKError, match="unknown photos 'jpeg_c'.*or a folder"):
        fivek.photo_folders(source, "jpeg_c")
    (source / "jpeg_c").mkdir()  # renditions exported elsewhere: any folder of <id>.<ext> files
    assert fivek.photo_folders(source, "jpeg_c") == [source / "jpeg_c"]
    assert fivek.photo_folders(source, str(source / "jpeg_c")) == [source / "jpeg_c"]
    with pytest.raises(fivek.FiveKError, match="no prepared FiveK.*data fivek --source"):
        fivek.FiveKSet("train", tmp_path / "nothing")


def test_interrupted_preparation_continues_without_redoing_images(miniature, tmp_path, monkeypatch):
    source, out = _copy(miniature, tmp_path / "src"), tmp_path / "out"
    settings = fivek.PrepareSettings(side=256)
    real = fivek.prepare_one
    calls = []

    def dies_on_the_fourth(photo, *args):
        calls.append(photo)
        if len(calls) == 4:
            raise KeyboardInterrupt  # a kill in the middle of the run
        return real(photo, *args)

    monkeypatch.setattr(fivek, "prepare_one", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        fivek.prepare(source, out, settings, workers=1, progress=False)
    done = {p.stem: p.stat().st_mtime_ns for p in (out / "large").glob("*.jpg")}
    assert set(done) == {"a0001", "a0002", "a0003"} and not list(out.rglob("*.tmp"))
    monkeypatch.setattr(fivek, "prepare_one", real)
    with pytest.raises(fivek.FiveKError, match="prepared with"):  # a resume at other sizes would mix them
        fivek.prepare(source, out, fivek.PrepareSettings(side=512), workers=1, progress=False)
    card = fivek.prepare(source, out, settings, workers=1, progress=False)
    assert card["prepared"] == 6
    assert {p: (out / "large" / f"{p}.jpg").stat().st_mtime_ns for p in done} == done  # not redone


def test_training_batches_read_the_files_in_a_seeded_order(prepared):
    out, _ = prepared
    train = fivek.FiveKSet("train", out)
    assert len(train) == 60 and train.proxies.shape == (60, 3, 32, 32) and train.proxies.dtype == torch.uint8
    stream = fivek.FiveKStream(16, seed=0, root=out)
    assert len(stream) == 4
    first = [b["label"] for b in stream]
    assert torch.equal(torch.cat(first).sort().values, train.label.sort().values)  # every image once
    stream.set_epoch(1)
    assert not all(torch.equal(a, b) for a, b in zip(first, [b["label"] for b in stream]))
    stream.set_epoch(0)
    assert all(torch.equal(a, b) for a, b in zip(first, [b["label"] for b in stream]))  # a resume sees the same
    # two processes: each takes half of the same order, in half-size batches; together every image once
    shards = [fivek.FiveKStream(8, seed=0, root=out, rank=r, world=2) for r in (0, 1)]
    assert [len(s) for s in shards] == [4, 4]
    ids = [[p.stem for b in s for p in b["image"].paths] for s in shards]
    assert not set(ids[0]) & set(ids[1]) and len(ids[0]) == len(ids[1]) == 30
    batch = train.as_dict(0, 2)
    assert isinstance(batch["image"], FileBatchSource) and batch["proxy"].shape == (2, 3, 32, 32)
    windows = torch.tensor([[[0.3, 0.0, 0.0]], [[0.5, 0.2, -0.2]]], requires_grad=True)
    crops = batch["image"].crop(windows, 64)
    assert crops.shape == (2, 1, 3, 64, 64)
    crops.mean().backward()
    assert torch.isfinite(windows.grad).all() and windows.grad.abs().sum() > 0


def test_command_line_prepares_a_miniature_and_names_a_missing_source(tmp_path, capsys):
    from saccadelib.__main__ import main

    assert main(["data", "fivek", "--miniature", str(tmp_path / "mini"), "--per-class", "1", "--out",
                 str(tmp_path / "out"), "--side", "128", "--workers", "1"]) == 0
    assert "prepared 6 photos (0 skipped" in capsys.readouterr().out
    assert len(_index(tmp_path / "out")) == 6
    assert main(["data", "fivek", "--source", str(tmp_path / "absent")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_raw_dng_photos_are_demosaiced_and_prepared(tmp_path):
    """The official download holds raw DNGs: LibRaw (rawpy) reads the miniature's DNG mosaics."""
    source = fivek_miniature.write_miniature(tmp_path / "raw", per_class=1, size=(1200, 800), photos="raw")
    assert fivek.photo_folders(source) == [source / "raw_photos" / "HQa1to700" / "photos"]
    photo = fivek.read_photo(source / "raw_photos" / "HQa1to700" / "photos" / "a0001.dng")
    assert photo.size == (1200, 800) and photo.mode == "RGB"
    tiff = fivek_miniature.write_miniature(tmp_path / "tiff", per_class=1, size=(1200, 800))  # the same photos
    reference = np.asarray(fivek.read_photo(tiff / "tiff16_c" / "a0001.tif"), dtype=np.float32)
    demosaiced = np.asarray(photo, dtype=np.float32)
    for channel in range(3):  # the same picture (LibRaw's gamma and colour matrix change the values)
        assert np.corrcoef(reference[..., channel].ravel(), demosaiced[..., channel].ravel())[0, 1] > 0.7
    card = fivek.prepare(source, tmp_path / "out", fivek.PrepareSettings(side=256), workers=1, progress=False)
    assert card["prepared"] == 6 and card["photos"] == str(source / "raw_photos" / "HQa1to700" / "photos")
