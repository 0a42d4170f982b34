"""Where a model's random numbers come from.

In training, from torch's global generator (seeded by the loop, restored on resume): ``FRESH``. In
evaluation, from each canvas's own streams (``CanvasDraws``), seeded by the run's seed, the split and the
canvas's index (``canvas_keys``): random windows, drawn cells, a noisy proxy or a sampled z at evaluation
then differ between canvases, batches, splits and seeds, and a canvas gets the same draws whatever batch
it is scored in, so a score does not depend on the evaluation batch size. Each use draws from a stream
of its own (``STREAMS``), so adding one use does not shift another's numbers.
"""
from __future__ import annotations

import hashlib

import torch

STREAMS = {"proxy_noise": 1, "proxy_mask": 2, "windows": 3, "cells": 4, "latent": 5, "patches": 6, "start": 7, "jitter": 8}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


class FreshDraws:
    """Torch's global generator: what training draws from."""

    def uniform(self, shape, like: torch.Tensor, stream: str) -> torch.Tensor:
        return torch.rand(shape, device=like.device, dtype=like.dtype)

    def normal(self, shape, like: torch.Tensor, stream: str) -> torch.Tensor:
        return torch.randn(shape, device=like.device, dtype=like.dtype)


FRESH = FreshDraws()


class CanvasDraws:
    """Each canvas's own streams, one per ``keys`` entry: ``shape`` starts with the number of canvases."""

    def __init__(self, keys: torch.Tensor):
        self.keys = [int(k) for k in keys.reshape(-1).tolist()]

    def _per_canvas(self, draw, shape, like: torch.Tensor, stream: str) -> torch.Tensor:
        if shape[0] != len(self.keys):
            raise ValueError(f"{len(self.keys)} canvases' draws asked for a batch of {shape[0]}")
        code = STREAMS[stream]
        rows = [draw(tuple(shape[1:]), generator=torch.Generator().manual_seed(_stream_seed(key, code)))
                for key in self.keys]
        return torch.stack(rows).to(device=like.device, dtype=like.dtype)

    def uniform(self, shape, like: torch.Tensor, stream: str) -> torch.Tensor:
        return self._per_canvas(torch.rand, shape, like, stream)

    def normal(self, shape, like: torch.Tensor, stream: str) -> torch.Tensor:
        return self._per_canvas(torch.randn, shape, like, stream)


def _stream_seed(key: int, code: int) -> int:
    """A 32-bit seed for (canvas key, stream): torch's CPU generator keeps only a seed's low 32 bits, so
    the key's seed and split bits are hashed in, not left above them."""
    return int.from_bytes(hashlib.blake2b(f"{key}/{code}".encode(), digest_size=4).digest(), "little")


def canvas_keys(seed: int, split: str | None, start: int, stop: int) -> torch.Tensor:
    """[stop - start] int64: the keys of canvases start..stop-1 of ``split`` for a run of ``seed``."""
    code = SPLIT_CODES.get(split, 3)
    return (torch.arange(start, stop, dtype=torch.int64) + (code << 32) + (int(seed) << 36))


def for_evaluation(keys: torch.Tensor | None, n: int) -> CanvasDraws:
    """The draws of ``n`` canvases scored outside a split (e.g. ``predict``): keyed by their position."""
    return CanvasDraws(torch.arange(n) if keys is None else keys)
