import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def mnist_root():
    """Real MNIST under data/ (the test command prepares it; this makes a bare `pytest` work too)."""
    from saccadelib.datasets import mnist

    folder = mnist.prepare_mnist()
    return folder.parent.parent


# A tiny glimpse model's settings, and the class names of the folders the user-facing tests build
TINY = dict(glimpses=2, hidden=16, proxy_features=16, crop_features=16, latent_features=8, width=8, rnn_layers=1)
NAMES = ["bars", "dots", "empty"]


@pytest.fixture()
def named_checkpoint(tmp_path):
    """A glimpse model trained (here: initialised) on a folder whose classes have names."""
    import json

    from saccadelib.model import ModelConfig, VariationalSaccading

    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=3, **TINY)
    meta = {"name": "saccade", "task": "folder", "config": json.loads(json.dumps(cfg.to_dict())), "class_names": NAMES}
    path = tmp_path / "best.pt"
    torch.save({"model": VariationalSaccading(cfg).state_dict(), "model_meta": meta, "epoch": 1}, path)
    return path
