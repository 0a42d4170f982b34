"""A second pass of bad inputs and faults on train, predict and evaluate: each case here once ended in a
traceback or did something wrong without a word. Each gets one line naming the file and the fix, or is
handled (a bad file in a folder skipped and listed)."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from saccadelib.__main__ import main
from saccadelib.datasets.pyramids import write_pyramid
from test_folder import _folder  # one subfolder per class: bars, dots, empty
from conftest import NAMES
from test_user_errors import TINY_SET


def _pyramid(path, side=512, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side), dtype=np.uint8)
    return write_pyramid(path, pixels, tile=64, smallest=64)


def _truncated(path):
    """A tiled TIFF whose header and tile tables are whole and whose compressed tiles are not."""
    import tifffile

    _pyramid(path)
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        spans = [(o, c) for page in tif.pages for o, c in zip(page.dataoffsets, page.databytecounts)]
    for offset, count in spans:
        data[offset:offset + count] = bytes(count)  # zeros: no zlib stream
    path.write_bytes(bytes(data))
    return path


def _main_err(capsys, args):
    code = main(args)
    return code, capsys.readouterr().err


def test_a_corrupt_tiled_tiff_names_its_file_and_a_folder_goes_on_without_it(named_checkpoint, tmp_path, capsys):
    from saccadelib.sources import ImageFileError, PyramidSource

    bad = _truncated(tmp_path / "bad.tif")
    with pytest.raises(ImageFileError, match="bad.tif"):
        PyramidSource(bad, channels=1).proxy(32)
    code, err = _main_err(capsys, ["predict", str(bad), "--checkpoint", str(named_checkpoint)])
    assert code == 2 and "bad.tif" in err and "Traceback" not in err
    images = _folder(tmp_path / "images", per_class=1)
    _truncated(images / "bars" / "broken.tif")
    out = tmp_path / "out"
    assert main(["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(out)]) == 0
    assert len(list(csv.DictReader(open(out / "predictions.csv")))) == 3
    assert "bars/broken.tif" in (out / "skipped.csv").read_text()
    from saccadelib.datasets.folder import _readable

    assert "corrupt or truncated tile" in _readable(images / "bars" / "broken.tif")  # train --images leaves it out
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nbars/0.png,bars\nbars/broken.tif,bars\ndots/0.png,dots\n")
    code, err = _main_err(capsys, ["evaluate", "--checkpoint", str(named_checkpoint), "--images", str(images),
                                   "--labels", str(labels), "--out", str(tmp_path / "scored")])
    assert code == 0
    scored = json.loads((tmp_path / "scored" / "metrics.json").read_text())
    assert scored["n"] == 2 and "bars/broken.tif" in (tmp_path / "scored" / "skipped.csv").read_text()


def test_a_csv_row_short_of_a_column_is_named_by_its_line(named_checkpoint, tmp_path, capsys):
    images = _folder(tmp_path / "images", per_class=1)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nbars/0.png,bars\ndots/0.png\n")
    code, err = _main_err(capsys, ["evaluate", "--checkpoint", str(named_checkpoint), "--images", str(images),
                                   "--labels", str(labels)])
    assert code == 2 and "line 3" in err and "label" in err and "Traceback" not in err
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,label\nbars/0.png,bars\ndots/0.png\n")
    code, err = _main_err(capsys, ["train", "--images", str(images), "--manifest", str(manifest),
                                   "--out", str(tmp_path / "run"), *TINY_SET])
    assert code == 2 and "line 3" in err and "Traceback" not in err


def test_a_csv_saved_with_a_byte_order_mark_reads_as_any_other(named_checkpoint, tmp_path):
    import saccadelib

    images = _folder(tmp_path / "images", per_class=1)
    labels = tmp_path / "labels.csv"
    labels.write_bytes("file,label\nbars/0.png,bars\ndots/0.png,dots\n".encode("utf-8-sig"))
    assert saccadelib.score_folder(named_checkpoint, images, labels)["n"] == 2


def test_a_rerun_whose_split_was_deleted_is_refused_not_resplit(tmp_path, capsys):
    root, out = _folder(tmp_path / "images", per_class=4), tmp_path / "run"
    train = ["train", "--images", str(root), "--out", str(out), *TINY_SET, "--train", "batch_size=4",
             "--train", "eval_batch_size=8", "--train", "test=false"]
    assert main([*train, "--train", "epochs=1"]) == 0
    (out / "split.csv").unlink()
    code, err = _main_err(capsys, [*train, "--train", "epochs=2"])
    assert code == 2 and "split.csv" in err and "Traceback" not in err
    assert not (out / "split.csv").exists()  # no new split was written beside the old checkpoint


def test_a_run_folder_takes_one_training_process_at_a_time(tmp_path):
    from saccadelib.paths import RunLock, RunLockedError

    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match="another process is training into"):
            with RunLock(tmp_path / "run"):
                pass
        # a second process is refused as well, with one line
        code = "from saccadelib.paths import RunLock\nwith RunLock(%r): pass\n" % str(tmp_path / "run")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode != 0 and "another process is training into" in done.stderr
    with RunLock(tmp_path / "run"):  # free again once the first let go
        pass


def test_a_run_folder_that_is_a_file_is_named(tmp_path, capsys):
    root = _folder(tmp_path / "images", per_class=4)
    (tmp_path / "taken").write_text("a file")
    code, err = _main_err(capsys, ["train", "--images", str(root), "--out", str(tmp_path / "taken"), *TINY_SET,
                                   "--train", "epochs=1"])
    assert code == 2 and "taken is a file" in err and "Traceback" not in err
    assert (tmp_path / "taken").read_text() == "a file"


def test_a_refused_resume_names_the_commands_own_way_out(tmp_path, capsys):
    root, out = _folder(tmp_path / "images", per_class=4), tmp_path / "run"
    train = ["train", "--images", str(root), "--out", str(out), "--train", "batch_size=4", "--train", "epochs=1",
             "--train", "eval_batch_size=8", "--train", "test=false"]
    assert main([*train, *TINY_SET]) == 0
    code, err = _main_err(capsys, [*train, *TINY_SET, "--set", "glimpses=3"])
    assert code == 2 and "resume=False" not in err and "--out" in err


def test_an_interrupted_folder_prediction_leaves_no_earlier_csv_looking_complete(named_checkpoint, tmp_path,
                                                                                  monkeypatch):
    from saccadelib import inference

    images = _folder(tmp_path / "images", per_class=1)
    out = tmp_path / "out"
    assert main(["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(out), "--overlays"]) == 0
    assert len(list((out / "overlays").iterdir())) == 3
    (images / "bars" / "0.png").unlink()
    calls = {"n": 0}
    real = inference.predicting.predict

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(inference.predicting, "predict", interrupted)
    with pytest.raises(KeyboardInterrupt):
        inference.predict_folder(images, named_checkpoint, out, overlays=True)
    assert not (out / "predictions.csv").exists() and not (out / "overlays").exists()
    monkeypatch.setattr(inference.predicting, "predict", real)
    inference.predict_folder(images, named_checkpoint, out, overlays=True)
    assert len(list((out / "overlays").iterdir())) == 2  # the deleted image's overlay is gone
    theirs = tmp_path / "theirs"  # a folder of the user's own named overlays is never cleared
    (theirs / "overlays").mkdir(parents=True)
    (theirs / "overlays" / "notes.txt").write_text("mine")
    for _ in range(2):  # and stays refused: nothing was marked as predict's
        with pytest.raises(ValueError, match="holds files predict did not write"):
            inference.predict_folder(images, named_checkpoint, theirs, overlays=True)
    assert (theirs / "overlays" / "notes.txt").read_text() == "mine"


def test_an_earlier_calls_output_inside_the_images_folder_is_never_read_as_input(named_checkpoint, tmp_path):
    images = _folder(tmp_path / "images", per_class=1)
    first, second = images / "out1", images / "out2"
    assert main(["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(first), "--overlays"]) == 0
    assert main(["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(second)]) == 0
    files = [r["file"] for r in csv.DictReader(open(second / "predictions.csv"))]
    assert len(files) == 3 and not any(f.startswith("out1") for f in files)


def test_an_overlay_onto_a_hard_link_of_the_input_is_refused(named_checkpoint, tmp_path, capsys):
    image = _folder(tmp_path / "images", per_class=1) / "bars" / "0.png"
    link = tmp_path / "link.png"
    os.link(image, link)
    before = image.read_bytes()
    code, err = _main_err(capsys, ["predict", str(image), "--checkpoint", str(named_checkpoint), "--overlay", str(link)])
    assert code == 2 and "is the input image itself" in err and image.read_bytes() == before


def test_nan_pixels_in_a_float_tiff_are_refused_not_read_as_black(tmp_path):
    import tifffile

    from saccadelib.sources import FileSource, ImageFileError

    pixels = np.full((32, 32), 0.5, np.float32)
    pixels[3, 4] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", pixels)
    with pytest.raises(ImageFileError, match="nan.tif.*not a number"):
        FileSource(tmp_path / "nan.tif", channels=1).proxy(16)


def test_images_in_a_symlinked_subfolder_are_found(named_checkpoint, tmp_path):
    from saccadelib.datasets.folder import read_manifest

    images = _folder(tmp_path / "images", per_class=3)
    elsewhere = _folder(tmp_path / "elsewhere", per_class=3)
    (images / "bars" / "more").symlink_to(elsewhere / "bars", target_is_directory=True)
    files = read_manifest(images).files
    assert sum(f.startswith("bars/more/") for f in files) == 3
    out = tmp_path / "out"
    assert main(["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(out)]) == 0
    assert sum(r["file"].startswith("bars/more/") for r in csv.DictReader(open(out / "predictions.csv"))) == 3
    (images / "bars" / "more" / "loop").symlink_to(images, target_is_directory=True)  # a cycle ends, not hangs
    assert len(read_manifest(images).files) == len(files)


def test_a_fifo_in_a_labels_csv_is_refused_not_waited_on(named_checkpoint, tmp_path):
    import saccadelib

    images = _folder(tmp_path / "images", per_class=1)
    os.mkfifo(images / "bars" / "pipe.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nbars/0.png,bars\nbars/pipe.png,bars\n")
    with pytest.raises(ValueError, match="line 3: .*pipe.png is not a regular file"):
        saccadelib.score_folder(named_checkpoint, images, labels)
    # in a folder given whole, it is listed as skipped, not left out without a word
    assert main(["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(tmp_path / "out")]) == 0
    assert "bars/pipe.png,\"not a regular file" in (tmp_path / "out" / "skipped.csv").read_text()


def test_a_checkpoint_whose_class_names_do_not_match_its_classes_is_refused(named_checkpoint, tmp_path):
    import saccadelib
    from saccadelib.checkpoint import CheckpointError

    ckpt = torch.load(named_checkpoint, weights_only=True)
    ckpt["model_meta"]["class_names"] = NAMES[:2]
    torch.save(ckpt, tmp_path / "two.pt")
    with pytest.raises(CheckpointError, match="2 class names for its 3 classes"):
        saccadelib.load(tmp_path / "two.pt")


def test_a_checkpoint_with_nan_weights_says_so(named_checkpoint, tmp_path):
    import saccadelib
    from saccadelib.checkpoint import CheckpointError

    ckpt = torch.load(named_checkpoint, weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][name] = torch.full_like(ckpt["model"][name], float("nan"))
    torch.save(ckpt, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=f"not finite.*{name}"):
        saccadelib.load(tmp_path / "nan.pt")


def test_a_file_name_that_is_not_utf8_is_named_and_skipped(named_checkpoint, tmp_path):
    images = _folder(tmp_path / "images", per_class=1)
    odd = os.fsencode(images / "bars") + b"/caf\xe9.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(odd.decode(errors="surrogateescape"))
    out = tmp_path / "out"
    assert main(["predict", str(images), "--checkpoint", str(named_checkpoint), "--out", str(out)]) == 0
    assert len(list(csv.DictReader(open(out / "predictions.csv")))) == 3
    assert "caf" in (out / "skipped.csv").read_text() and "UTF-8" in (out / "skipped.csv").read_text()


def test_a_jpeg_tiled_pyramid_reads_like_its_lossless_twin(tmp_path):
    from saccadelib.sources import PyramidSource

    pixels = np.kron(np.random.default_rng(0).integers(0, 255, (16, 16, 3)), np.ones((32, 32, 1))).astype(np.uint8)
    lossless = write_pyramid(tmp_path / "zlib.tif", pixels, tile=128, smallest=128)
    jpeg = write_pyramid(tmp_path / "jpeg.tif", pixels, tile=128, smallest=128, compression="jpeg")
    a, b = (PyramidSource(p, channels=3).proxy(64) for p in (lossless, jpeg))
    assert (a - b).abs().mean() < 0.02  # JPEG's loss, no more


def test_checking_a_folder_never_decodes_a_huge_single_level_tiff_whole(tmp_path, monkeypatch):
    from saccadelib.sources import open as opener

    pixels = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
    path = write_pyramid(tmp_path / "one_level.tif", pixels, tile=64, smallest=256)  # tiled, one level
    monkeypatch.setattr(opener, "MAX_PIXELS", 64 * 64)  # its only level is above the limit: no decode
    read = []
    monkeypatch.setattr(opener.PyramidSource, "read", lambda self, *a: read.append(a))
    assert opener.unreadable(path) is None and read == []


def test_a_slide_with_corrupt_tiles_names_its_file(tmp_path):
    pytest.importorskip("openslide", reason="the slides extra: pip install 'saccadelib[slides]'")
    from saccadelib.sources import ImageFileError, SlideSource, open_image

    slide = _truncated(tmp_path / "bad.tif").rename(tmp_path / "bad.svs")  # OpenSlide opens it: the header is whole
    source = open_image(slide, channels=3)
    assert isinstance(source, SlideSource)
    with pytest.raises(ImageFileError, match="bad.svs.*corrupt or truncated tile"):  # not OpenSlideError
        source.proxy(32)
