import gzip
import pickle

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from saccadelib.datasets import mnist

# Official MNIST facts (independent of how we obtained the files).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_torchvision_reads_prepared_mnist(mnist_root):
    train = MNIST(str(mnist_root), train=True, download=False)
    test = MNIST(str(mnist_root), train=False, download=False)
    assert train.data.shape == (60000, 28, 28) and train.data.dtype == torch.uint8
    assert test.data.shape == (10000, 28, 28)
    assert torch.bincount(train.targets).tolist() == TRAIN_COUNTS
    assert torch.bincount(test.targets).tolist() == TEST_COUNTS
    assert train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.targets[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert int(train.data.max()) == 255 and int(train.data.min()) == 0


def test_prepare_is_idempotent(mnist_root):
    folder = mnist.raw_folder(mnist_root)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    mnist.prepare_mnist(mnist_root, try_torchvision=False)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def _fake_pickle(path, rng, sizes=(5, 3, 4), scale=256):
    parts = []
    pixels = []
    for n in sizes:
        u8 = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
        pixels.append(u8)
        parts.append(((u8 / scale).astype(np.float32), rng.integers(0, 10, size=n).astype(np.int64)))
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(parts), f, protocol=4)
    return parts, pixels


def test_conversion_is_exact_and_torchvision_reads_it(tmp_path):
    rng = np.random.default_rng(0)
    pkl = tmp_path / "mnist.pkl.gz"
    parts, pixels = _fake_pickle(pkl, rng)
    folder = mnist.convert_hub_pickle(pkl, tmp_path, expected_sha256=mnist.sha256_file(pkl), expected_counts=None)
    train = MNIST(str(tmp_path), train=True, download=False)
    test = MNIST(str(tmp_path), train=False, download=False)
    assert np.array_equal(train.data.numpy().reshape(-1, 784), np.concatenate(pixels[:2]))
    assert np.array_equal(test.data.numpy().reshape(-1, 784), pixels[2])
    assert train.targets.tolist() == np.concatenate([parts[0][1], parts[1][1]]).tolist()
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*"))


def test_float_conversion_rejects_values_off_the_grid():
    exact = np.arange(256, dtype=np.float32) / 256
    assert mnist.floats_to_uint8(exact).tolist() == list(range(256))
    # k/255 is what the issue assumed; the real pickle is k/256, and mixing them up must not pass silently.
    with pytest.raises(mnist.MNISTError, match="not multiples of 1/256"):
        mnist.floats_to_uint8(np.arange(256, dtype=np.float32) / 255)


def test_real_pickle_is_on_the_256_grid_not_255(mnist_root):
    (x, _), _, _ = mnist.load_hub_pickle(mnist_root / "downloads" / "mnist.pkl.gz")
    scaled = x.astype(np.float64) * 255
    assert np.abs(scaled - np.rint(scaled)).max() > 0.4
    assert mnist.floats_to_uint8(x).max() == 255


def test_wrong_hash_names_file_and_fix(tmp_path):
    pkl = tmp_path / "mnist.pkl.gz"
    _fake_pickle(pkl, np.random.default_rng(1))
    with pytest.raises(mnist.MNISTError) as err:
        mnist.convert_hub_pickle(pkl, tmp_path)
    assert str(pkl) in str(err.value) and "SHA-256" in str(err.value)
    assert "python -m saccadelib data mnist" in str(err.value)
    assert not mnist.raw_folder(tmp_path).exists() or not any(mnist.raw_folder(tmp_path).iterdir())


def test_truncated_pickle_is_reported(tmp_path):
    pkl = tmp_path / "mnist.pkl.gz"
    _fake_pickle(pkl, np.random.default_rng(2))
    pkl.write_bytes(pkl.read_bytes()[:200])
    with pytest.raises(mnist.MNISTError, match="cannot be read"):
        mnist.load_hub_pickle(pkl, expected_sha256=mnist.sha256_file(pkl))
    with pytest.raises(mnist.MNISTError, match="SHA-256"):  # with the real hash it fails even earlier
        mnist.load_hub_pickle(pkl)


def test_missing_pickle_is_reported(tmp_path):
    with pytest.raises(mnist.MNISTError, match="missing: .*nothing-here.pkl.gz"):
        mnist.load_hub_pickle(tmp_path / "nothing-here.pkl.gz")


def test_unpickler_refuses_anything_but_numpy(tmp_path):
    pkl = tmp_path / "evil.pkl.gz"

    class Evil:
        def __reduce__(self):
            import os
            return (os.getcwd, ())

    with gzip.open(pkl, "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(mnist.MNISTError, match="refusing to unpickle global"):
        mnist.load_hub_pickle(pkl, expected_sha256=mnist.sha256_file(pkl))


def test_missing_and_truncated_raw_files_name_the_file(tmp_path, mnist_root):
    with pytest.raises(mnist.MNISTError, match="missing: .*train-images-idx3-ubyte.*python -m saccadelib data mnist"):
        mnist.check_raw_folder(tmp_path)
    folder = mnist.raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in mnist.RAW_FILES:
        (folder / name).write_bytes((mnist.raw_folder(mnist_root) / name).read_bytes())
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:5000])
    with pytest.raises(mnist.MNISTError, match="t10k-labels-idx1-ubyte is truncated"):
        mnist.check_raw_folder(tmp_path)


def test_a_same_size_corrupt_file_is_caught_by_its_content_hash(tmp_path, mnist_root):
    folder = mnist.raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in mnist.RAW_FILES:
        (folder / name).write_bytes((mnist.raw_folder(mnist_root) / name).read_bytes())
    images = bytearray((folder / "t10k-images-idx3-ubyte").read_bytes())
    images[5000] ^= 0xFF  # one pixel flipped: header and size still right
    (folder / "t10k-images-idx3-ubyte").write_bytes(bytes(images))
    with pytest.raises(mnist.MNISTError, match="t10k-images-idx3-ubyte has SHA-256 .*corrupt or altered"):
        mnist.check_raw_folder(tmp_path)


def test_prepare_repairs_a_truncated_file_from_the_cached_pickle(tmp_path, mnist_root):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "mnist.pkl.gz").write_bytes((mnist_root / "downloads" / "mnist.pkl.gz").read_bytes())
    folder = mnist.raw_folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03 half a file")
    mnist.prepare_mnist(tmp_path, try_torchvision=False)
    mnist.check_raw_folder(tmp_path)
    for name in mnist.RAW_FILES:
        assert (folder / name).read_bytes() == (mnist.raw_folder(mnist_root) / name).read_bytes()


def test_interrupted_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "raw" / "file"

    def explode(self, payload):
        open(self, "wb").write(payload[:3])
        raise KeyboardInterrupt

    monkeypatch.setattr("pathlib.Path.write_bytes", explode)
    with pytest.raises(KeyboardInterrupt):
        mnist.write_idx(target, np.zeros((2, 28, 28), np.uint8))
    assert list((tmp_path / "raw").iterdir()) == []
