"""A label that is a set of classes (Megapixel MNIST's ``multi``): each class scored apart by every model's
loss, an image right when every class is, and predict naming the set."""
import json

import pytest
import torch
import torch.nn.functional as F

from saccadelib.datasets import megapixel
from saccadelib.datasets import twodigit as data
from saccadelib.loss import class_nll, label_probability, predicted_right
from saccadelib.names import multilabel


def test_one_class_per_image_keeps_the_cross_entropy_exactly():
    torch.manual_seed(0)
    logits, label = torch.randn(5, 7), torch.randint(0, 7, (5,))
    assert torch.equal(class_nll(logits, label), F.cross_entropy(logits, label))
    steps = torch.randn(5, 3, 7)
    assert torch.equal(class_nll(steps, label), F.cross_entropy(steps.reshape(15, 7), label.repeat_interleave(3)))
    assert torch.equal(predicted_right(logits, label), logits.argmax(-1) == label)
    assert torch.equal(label_probability(logits, label), logits.softmax(-1)[torch.arange(5), label])


def test_a_set_of_classes_is_scored_class_by_class():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 1.0, -0.5]])
    label = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.uint8)
    p = logits.sigmoid()
    by_hand = -(label * p.log() + (1 - label) * (1 - p).log()).sum(-1)  # [2]
    assert torch.allclose(class_nll(logits, label, reduction="none"), by_hand)
    assert torch.allclose(class_nll(logits, label), by_hand.mean())
    assert torch.allclose(class_nll(logits, label, reduction="sum"), by_hand.sum())
    assert predicted_right(logits, label).tolist() == [True, False]  # the second misses class 2
    assert torch.allclose(label_probability(logits, label), (-by_hand).exp())
    steps = torch.stack([logits, -logits], 1)  # [2, 2 steps, 3]
    assert class_nll(steps, label, reduction="none").shape == (2, 2)
    assert predicted_right(steps, label).tolist() == [[True, False], [False, False]]


def test_megapixel_multi_trains_every_kind_of_model_and_predict_names_the_set(mnist_root, tmp_path, monkeypatch):
    from saccadelib import predict, score_folder
    from saccadelib.datasets.megapixel_png import export_png
    from saccadelib.train import train_model

    assert multilabel("megapixel_multi") and multilabel("megapixel_blobs_multi") and not multilabel("megapixel_top")
    monkeypatch.setattr(data, "digit_pool", lambda split, root=None, _pool=data.digit_pool: _pool(split, mnist_root))
    root = tmp_path / "sets"
    for split, n in {"train": 8, "val": 4, "test": 4}.items():
        megapixel.save(megapixel.generate(split, n=n, config=megapixel.MegapixelConfig(side=300)),
                       megapixel.set_path(split, root))
    test = megapixel.load("test", root).with_label("multi")
    assert test.as_dict()["label"].shape == (4, 10) and test.describe()["label_histogram"] == \
        test.labels["multi"].sum(0).tolist()
    loop = {"epochs": 1, "batch_size": 4, "val_size": 4, "test_size": 4, "data_root": str(root), "progress": "none"}
    glimpses = {"glimpses": 6, "window.min_scale": 0.1, "init_scale": 0.12, "proxy_size": 64}
    for model, settings in [("saccade", glimpses), ("saccade_cells", glimpses), ("proxy_cnn", {"proxy_size": 64}),
                            ("ram", {"reward": "likelihood", "step_loss": True}),
                            ("ips", {"encoder": "small", "dim": 16, "heads": 2, "memory": 8, "iteration": 10})]:
        summary = train_model(model, "megapixel_multi", tmp_path / model, settings, loop)
        assert summary["epochs_run"] == 1 and 0 <= summary["test"]["accuracy"] <= 1
        assert summary["test"]["nll"] > 0
    export_png("test", tmp_path / "png", root=root, limit=1)
    result = predict(tmp_path / "png" / "00000.png", tmp_path / "saccade" / "best.pt")
    assert set(result["classes"]) <= set("0123456789") and len(result["probabilities"]) == 10
    assert result["class"] == ("+".join(result["classes"]) or "none")
    with pytest.raises(ValueError, match="label is a set of classes"):
        score_folder(tmp_path / "saccade" / "best.pt", tmp_path / "png", tmp_path / "png" / "labels.csv")
    assert json.loads((tmp_path / "saccade" / "metrics.json").read_text())["test"]["n"] == 4
