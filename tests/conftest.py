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
