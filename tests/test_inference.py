import json

import numpy as np
import pytest
import torch
from PIL import Image

from saccadelib.datasets import twodigit as data
from saccadelib.__main__ import main
from saccadelib.inference import CheckpointError, load_model, predict
from saccadelib.model import ModelConfig, VariationalSaccading

TINY = dict(n_classes=55, glimpses=3, hidden=32, proxy_features=32, crop_features=32, latent_features=16,
            width=8, rnn_layers=1)


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(**TINY)
    path = tmp_path / "best.pt"
    meta = {"name": "saccade", "task": "identification", "config": json.loads(json.dumps(cfg.to_dict()))}
    torch.save({"model": VariationalSaccading(cfg).state_dict(), "model_meta": meta, "epoch": 1}, path)
    return path


@pytest.fixture()
def canvas_png(tmp_path, mnist_root):
    image = data.make_two_digit("identification", "test", 1, 0)["image"][0, 0]
    path = tmp_path / "canvas.png"
    Image.fromarray((image * 255).round().byte().numpy()).save(path)
    return path, image


def test_predict_on_a_file_gives_class_probabilities_and_pixel_windows(checkpoint, canvas_png, tmp_path):
    path, image = canvas_png
    result = predict(path, checkpoint, overlay=tmp_path / "overlay.png")
    assert result["class"] in data.class_names("identification")
    assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert len(result["windows"]) == 3 and len(result["step_predictions"]) == 3
    for w in result["windows"]:
        x0, y0, x1, y1 = w["box"]
        assert -1 <= x0 < x1 <= 101 and -1 <= y0 < y1 <= 101
    assert Image.open(tmp_path / "overlay.png").size == (512, 512)  # a small image enlarged, so that its numbers can be read
    from_tensor = predict(image.unsqueeze(0), checkpoint)
    assert from_tensor["class"] == result["class"]  # the PNG holds the same pixels


def test_the_public_api_loads_once_and_takes_paths_tensors_and_arrays(checkpoint, canvas_png, tmp_path):
    import saccadelib

    path, image = canvas_png
    model = saccadelib.load(checkpoint)
    assert model.meta["name"] == "saccade" and model.meta["checkpoint"] == str(checkpoint)
    from_file = saccadelib.predict(path, model)
    as_array = (image * 255).round().byte().numpy()  # [H, W] uint8, as an image library holds it
    from_array = saccadelib.predict(as_array, model)
    assert from_array["class"] == from_file["class"] and from_array["windows"] == from_file["windows"]
    assert saccadelib.predict(path, checkpoint)["probabilities"] == from_file["probabilities"]
    (tmp_path / "labels.csv").write_text(f"file,label\n{path.name},{from_file['class']}\n")
    scored = saccadelib.score_folder(model, path.parent, tmp_path / "labels.csv", out_dir=tmp_path / "scored")
    assert scored["accuracy"] == 1.0 and scored["checkpoint"] == str(checkpoint)
    assert (tmp_path / "scored" / "predictions.csv").exists()
    with pytest.raises(ValueError, match="array"):
        saccadelib.predict(np.zeros((2, 3, 4, 5), dtype=np.uint8), model)


def test_predict_on_a_folder_writes_a_row_per_image_and_lists_what_it_skips(checkpoint, canvas_png, tmp_path, capsys):
    import csv

    path, _ = canvas_png
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    Image.open(path).save(folder / "a.png")
    Image.open(path).save(folder / "sub" / "b.png")
    (folder / "broken.png").write_bytes(b"not an image")
    assert main(["predict", str(folder), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"),
                 "--overlays"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert [r["file"] for r in rows] == ["a.png", "sub/b.png"] and len(rows[0]["windows"].split(";")) == 3
    assert rows[0]["class"] == rows[1]["class"]  # the same pixels
    assert "broken.png" in (tmp_path / "out" / "skipped.csv").read_text()
    assert sorted(p.name for p in (tmp_path / "out" / "overlays").iterdir()) == ["a.png.png", "sub__b.png.png"]
    assert main(["predict", str(folder), "--checkpoint", str(checkpoint)]) != 0
    assert "give --out DIR" in capsys.readouterr().err


def test_predict_refuses_a_model_without_glimpses(tmp_path):
    import saccadelib
    from saccadelib.baselines import ProxyCNN, ProxyCNNConfig

    cfg = ProxyCNNConfig(n_classes=10)
    meta = {"name": "proxy_cnn", "task": "megapixel_majority", "config": json.loads(json.dumps(cfg.to_dict()))}
    torch.save({"model": ProxyCNN(cfg).state_dict(), "model_meta": meta, "epoch": 1}, tmp_path / "best.pt")
    model = saccadelib.load(tmp_path / "best.pt")
    with pytest.raises(ValueError, match="takes no glimpses: score it with the evaluate command"):
        saccadelib.predict(torch.rand(1, 64, 64), model)


def test_cli_prints_json_and_human_lines(checkpoint, canvas_png, capsys, tmp_path):
    path, _ = canvas_png
    assert main(["predict", str(path), "--checkpoint", str(checkpoint), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"class", "probabilities", "windows"}
    assert main(["predict", str(path), "--checkpoint", str(checkpoint), "--overlay", str(tmp_path / "o.png")]) == 0
    out = capsys.readouterr().out
    assert "glimpse 3:" in out and "overlay saved" in out


def test_bad_images_get_clear_errors(checkpoint, tmp_path, capsys):
    rgb = tmp_path / "colour.png"
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(rgb)
    assert main(["predict", str(rgb), "--checkpoint", str(checkpoint)]) == 2
    assert "colour (mode RGB) but the model takes 1 channel: convert it to greyscale" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["predict", str(broken), "--checkpoint", str(checkpoint)]) == 2
    assert "cannot read image" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"expected one image \[1, H, W\]"):
        predict(torch.rand(3, 50, 50), checkpoint)


def test_bad_checkpoints_get_clear_errors(checkpoint, tmp_path):
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["model_meta"]["config"]["crop_features"] = 64  # weights no longer fit the recorded config
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not match its recorded model config"):
        load_model(tmp_path / "mismatch.pt")
    torch.save({"state": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint of a glimpse model"):
        load_model(tmp_path / "foreign.pt")
    torch.save({"model_meta": {"name": "saccade"}, "model": {}, "evil": Image.new("L", (2, 2))}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint saccadelib can read"):  # weights_only refuses objects
        load_model(tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "none.pt")


def test_the_newcomer_path_trains_by_recipe_and_scores_exported_canvases(checkpoint, mnist_root, tmp_path, capsys):
    run = tmp_path / "first"
    sets = ["--set", "hidden=16", "--set", "proxy_features=16", "--set", "crop_features=16", "--set", "width=8",
            "--set", "latent_features=8", "--set", "rnn_layers=1"]
    assert main(["train", "--task", "identification", "--recipe", "four_glimpses_grid_start", *sets, "--set", "glimpses=2",
                 "--train", "epochs=1", "--train", "train_size=8", "--train", "batch_size=4", "--train", "val_size=4",
                 "--train", "test_size=4", "--train", "progress=none", "--out", str(run)]) == 0
    model = json.loads((run / "config.json").read_text())["model"]["config"]
    assert model["classifier_reads"] == "crops" and model["init_layout"] == "grid" and model["glimpses"] == 2  # --set on top
    assert main(["train", "--task", "identification", "--recipe", "fast", "--out", str(tmp_path / "x")]) != 0
    assert "unknown recipe 'fast'; valid: four_glimpses_grid_start, small_windows, small_glimpses" in capsys.readouterr().err

    assert main(["data", "two-digit-png", "--limit", "3", "--out", str(tmp_path / "samples")]) == 0
    labels = (tmp_path / "samples" / "labels.csv").read_text().splitlines()
    names = data.class_names("identification")
    assert labels[1:] == [f"{k:05d}.png,{names[y]}" for k, y in enumerate(data.eval_set("identification", "test").label[:3])]
    stored = data.eval_set("identification", "test").as_dict(0, 1)["image"][0, 0]
    assert torch.equal(torch.from_numpy(np.array(Image.open(tmp_path / "samples" / "00000.png"))).float() / 255, stored)
    assert main(["predict", str(tmp_path / "samples" / "00000.png"), "--checkpoint", str(run / "best.pt"),
                 "--overlay", str(tmp_path / "overlay.png")]) == 0
    assert Image.open(tmp_path / "overlay.png").size == (512, 512)
