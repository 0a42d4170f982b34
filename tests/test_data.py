import json
import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from saccadelib.datasets import twodigit as data

TASKS = list(data.TASKS)


# ----------------------------------------------------------------------------------------- labels

def test_pair_index_is_a_bijection_onto_55_unordered_pairs():
    seen = {}
    for a, b in itertools.product(range(10), repeat=2):
        k = int(data.pair_index(a, b))
        assert k == int(data.pair_index(b, a))
        seen.setdefault(k, set()).add(frozenset((a, b)))
    assert sorted(seen) == list(range(55))
    assert all(len(pairs) == 1 for pairs in seen.values())
    assert [int(data.pair_index(a, a)) for a in range(10)] == [0, 10, 19, 27, 34, 40, 45, 49, 52, 54]
    assert int(data.pair_index(0, 9)) == 9 and int(data.pair_index(1, 2)) == 11
    assert all(data.pair_from_index(int(data.pair_index(a, b))) == (min(a, b), max(a, b))
               for a, b in itertools.product(range(10), repeat=2))


def test_pair_index_on_tensors_matches_ints():
    a, b = torch.randint(0, 10, (100,)), torch.randint(0, 10, (100,))
    assert data.pair_index(a, b).tolist() == [int(data.pair_index(int(x), int(y))) for x, y in zip(a, b)]
    with pytest.raises(ValueError):
        data.pair_index(3, 10)


@pytest.mark.parametrize("task", TASKS)
def test_labels_follow_the_digits(task, mnist_root):
    s = data.generate(task, "train", 2000, 7)
    a, b = s.digits[:, 0], s.digits[:, 1]
    expected = a + b if task == "sum" else data.pair_index(a, b)
    assert torch.equal(s.label, expected)
    assert int(s.label.max()) < data.TASKS[task].n_classes
    _, pool_labels = data.digit_pool("train")
    assert torch.equal(pool_labels[s.source], s.digits)
    same = a == b
    assert same.any(), "equal digits must occur and be labelled"
    if task == "identification":
        assert torch.equal(s.label[same], data.pair_index(a[same], a[same]))


# -------------------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("canvas", [100, 60])
def test_public_contract_shapes_and_ranges(task, canvas, mnist_root):
    d = data.make_two_digit(task, "val", 64, 3, canvas=canvas)
    assert set(d) == {"image", "label", "digits", "boxes", "regions"}
    assert d["image"].shape == (64, 1, canvas, canvas) and d["image"].dtype == torch.float32
    assert d["label"].shape == (64,) and d["label"].dtype == torch.int64
    assert d["digits"].shape == (64, 2) and d["digits"].dtype == torch.int64
    assert d["boxes"].shape == (64, 2, 4) and d["boxes"].dtype == torch.float32
    assert 0 <= d["image"].min() and d["image"].max() <= 1
    boxes = d["boxes"]
    assert (boxes[..., :2] >= 0).all() and (boxes[..., 2:] <= canvas).all()
    assert torch.equal(boxes[..., 2:] - boxes[..., :2], torch.full((64, 2, 2), 28.0))
    # the same boxes in the sampler's [-1, 1] coordinates: a window with these edges holds the digit exactly
    assert torch.allclose(d["regions"], boxes / canvas * 2 - 1) and d["regions"].abs().max() <= 1


@pytest.mark.parametrize("task", TASKS)
def test_boxes_hold_their_digits(task, mnist_root):
    s = data.generate(task, "test", 300, 11)
    images, _ = data.digit_pool("test")
    for i in range(len(s)):
        for j in range(2):
            x0, y0, x1, y1 = s.boxes[i, j].int().tolist()
            region = s.canvases[i, y0:y1, x0:x1]
            # pixels add and clip at 255, so the canvas is at least the digit everywhere in its box
            assert (region >= images[s.source[i, j]]).all()


def test_sum_canvases_are_empty_outside_the_digits(mnist_root):
    s = data.generate("sum", "train", 300, 5)
    mask = torch.zeros_like(s.canvases, dtype=torch.bool)
    for i in range(len(s)):
        for j in range(2):
            x0, y0, x1, y1 = s.boxes[i, j].int().tolist()
            mask[i, y0:y1, x0:x1] = True
    assert int(s.canvases[~mask].max()) == 0


def _constant_pools(monkeypatch, values):
    """Replace MNIST by constant images whose value names the split, to trace what lands on a canvas."""
    def pool(split, root=None):
        n = {"train": 50_000, "val": 10_000, "test": 10_000}[split]
        return torch.full((n, 28, 28), values[split], dtype=torch.uint8), torch.arange(n) % 10

    monkeypatch.setattr(data, "digit_pool", pool)


def test_clutter_count_and_size(monkeypatch):
    _constant_pools(monkeypatch, {"train": 1, "val": 1, "test": 1})
    # with all-ones digits nothing clips, so the canvas mass counts the pasted pixels exactly
    mass = {task: data.generate(task, "train", 50, 0).canvases.sum(dim=(1, 2)) for task in TASKS}
    assert (mass["sum"] == 2 * 28 * 28).all()
    assert (mass["identification"] == 2 * 28 * 28 + 8 * 8 * 8).all()


@pytest.mark.parametrize("task", TASKS)
def test_each_split_uses_only_its_own_digits(task, monkeypatch):
    values = {"train": 1, "val": 11, "test": 23}
    _constant_pools(monkeypatch, values)
    for split, v in values.items():
        pixels = data.generate(task, split, 200, 4).canvases
        nonzero = pixels[pixels > 0].to(torch.int32)
        assert len(nonzero) and (nonzero % v == 0).all(), f"{split} canvas holds another split's pixels"


def test_split_pools_are_the_defined_slices_of_mnist(mnist_root):
    from torchvision.datasets import MNIST

    train = MNIST(str(mnist_root), train=True, download=False)
    test = MNIST(str(mnist_root), train=False, download=False)
    assert torch.equal(data.digit_pool("train")[0], train.data[:50_000])
    assert torch.equal(data.digit_pool("val")[0], train.data[50_000:])
    assert torch.equal(data.digit_pool("test")[0], test.data)
    assert torch.equal(data.digit_pool("test")[1], test.targets)


# ----------------------------------------------------------------------------- determinism, hashes

@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_bytes_other_seed_different(task, mnist_root):
    first = data.generate(task, "train", 500, 42)
    again = data.generate(task, "train", 500, 42)
    other = data.generate(task, "train", 500, 43)
    assert first.sha256() == again.sha256()
    assert torch.equal(first.canvases, again.canvases) and torch.equal(first.boxes, again.boxes)
    assert first.sha256() != other.sha256()
    assert not torch.equal(first.canvases, other.canvases)


def test_bytes_do_not_depend_on_thread_count(mnist_root):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = data.generate("identification", "train", 800, 9).sha256()
        torch.set_num_threads(2)
        two = data.generate("identification", "train", 800, 9).sha256()
    finally:
        torch.set_num_threads(threads)
    assert one == two


def test_fixed_sets_match_the_recorded_hashes(mnist_root):
    cards = json.loads(data.SET_CARDS.read_text())["sets"]
    assert {(c["task"], c["split"]) for c in cards} == {(t, s) for t in TASKS for s in ("val", "test")}
    for card in cards:
        fixed = data.eval_set(card["task"], card["split"])
        assert len(fixed) == 10_000
        assert data.describe(fixed) == card, f"{card['task']}/{card['split']} changed: regenerate on purpose"


def test_data_two_digit_checks_the_sets_and_records_only_when_asked(mnist_root, tmp_path, capsys):
    from saccadelib.__main__ import main

    assert main(["data", "two-digit"]) == 0  # the committed cards match the generated sets
    altered = json.loads(data.SET_CARDS.read_text())
    altered["sets"][1]["sha256"] = "0" * 64
    (tmp_path / "cards.json").write_text(json.dumps(altered))
    assert main(["data", "two-digit", "--cards", str(tmp_path / "cards.json")]) == 2
    err = capsys.readouterr().err
    assert "differs from cards.json (sha256)" in err and "--record" in err
    assert json.loads((tmp_path / "cards.json").read_text()) == altered  # checking never rewrites the record
    assert main(["data", "two-digit", "--cards", str(tmp_path / "cards.json"), "--record"]) == 0
    assert json.loads((tmp_path / "cards.json").read_text())["sets"] == json.loads(data.SET_CARDS.read_text())["sets"]


def test_eval_batches_cover_every_sample_once(mnist_root):
    fixed = data.eval_set("sum", "test")
    labels = torch.cat([b["label"] for b in fixed.batches(384)])  # 10000 is not a multiple of 384
    assert torch.equal(labels, fixed.label)


# --------------------------------------------------------------------------------- training stream

def test_stream_is_fresh_each_epoch_and_repeatable(mnist_root):
    stream = data.TwoDigitStream("identification", n_per_epoch=300, batch_size=128, seed=1)
    assert len(stream) == 3
    epoch0 = list(stream)
    assert [len(b["label"]) for b in epoch0] == [128, 128, 44]
    stream.set_epoch(1)
    epoch1 = list(stream)
    assert not torch.equal(epoch0[0]["image"], epoch1[0]["image"])
    stream.set_epoch(0)
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(epoch0, stream))


def test_stream_through_dataloader_workers_keeps_order(mnist_root):
    stream = data.TwoDigitStream("sum", n_per_epoch=500, batch_size=100, seed=2)
    stream.set_epoch(3)
    inline = [b["label"] for b in DataLoader(stream, batch_size=None)]
    workers = [b["label"] for b in DataLoader(stream, batch_size=None, num_workers=2)]
    assert len(inline) == 5 and all(torch.equal(a, b) for a, b in zip(inline, workers))


# ------------------------------------------------------------------------------------ bad input

def test_unknown_task_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown task 'product'.*sum, identification"):
        data.make_two_digit("product", "train", 1, 0)


def test_unknown_split_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown split 'dev'.*train, val, test"):
        data.make_two_digit("sum", "dev", 1, 0)
    with pytest.raises(ValueError, match="fixed sets exist for splits val, test"):
        data.eval_set("sum", "train")


def test_too_small_canvas_and_negative_sizes_are_rejected():
    with pytest.raises(ValueError, match="at least 28"):
        data.make_two_digit("sum", "train", 1, 0, canvas=20)
    with pytest.raises(ValueError, match="non-negative"):
        data.make_two_digit("sum", "train", -1, 0)
    with pytest.raises(ValueError, match="non-negative"):
        data.make_two_digit("sum", "train", 1, -5)


def test_missing_mnist_says_how_to_get_it(tmp_path):
    from saccadelib.datasets.mnist import MNISTError

    with pytest.raises(MNISTError, match="python -m saccadelib data mnist"):
        data.generate("sum", "train", 1, 0, root=tmp_path)


def test_class_names():
    assert len(data.class_names("sum")) == 19 and data.class_names("sum")[18] == "18"
    names = data.class_names("identification")
    assert len(names) == 55 and names[0] == "00" and names[10] == "11" and names[54] == "99"
