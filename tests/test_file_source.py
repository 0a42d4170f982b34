"""File sources: photos read through proxy and crop without the full-resolution decode."""
import zlib

import numpy as np
import pytest
import torch

from saccadelib.sources import FileBatchSource, FileSource, ImageFileError, TensorSource
from saccadelib.sampler import window_to_box


def _window(scale, cx, cy):
    return torch.tensor([[[scale, cx, cy]]])


@pytest.fixture()
def photo(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:600, 0:800]
    rgb = np.stack([xx / 800, yy / 600, 0.5 + 0.5 * np.sin(xx / 40)], -1)
    rgb = (rgb * 255 + rng.normal(0, 3, rgb.shape)).clip(0, 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    return path, torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)


def test_file_source_matches_the_in_memory_image(photo):
    path, tensor = photo
    source = FileSource(path)
    assert (source.height, source.width) == (600, 800)
    assert torch.equal(source.decode(), tensor)  # PNG is lossless: the full decode is the image itself
    assert (source.proxy(32) - TensorSource(tensor).proxy(32)).abs().mean() < 0.02
    windows = torch.tensor([[[0.3, -0.4, 0.2], [0.5, 0.3, -0.3]]])
    from_file = source.crop(windows, 32)
    from_memory = TensorSource(tensor).crop(windows, 32)
    assert from_file.shape == (1, 2, 3, 32, 32)
    assert (from_file - from_memory).abs().mean() < 0.02


def test_file_source_errors_name_the_problem(tmp_path, photo):
    path, _ = photo
    with pytest.raises(ImageFileError, match="not found"):
        FileSource(tmp_path / "missing.jpg")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(ImageFileError, match="cannot read image"):
        FileSource(junk)
    with pytest.raises(ImageFileError, match=r"colour .* takes 1 channel: convert it to greyscale"):
        FileSource(path, channels=1)
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.new("L", (50, 40)).save(grey)
    with pytest.raises(ImageFileError, match=r"greyscale .* takes 3 channels: convert it to RGB"):
        FileSource(grey, channels=3)


def test_truncated_jpeg_is_reported_when_decoded(tmp_path, photo):
    from PIL import Image

    _, tensor = photo
    jpeg = tmp_path / "photo.jpg"
    Image.fromarray((tensor[0].permute(1, 2, 0) * 255).byte().numpy()).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[:3000])
    with pytest.raises(ImageFileError, match="photo.jpg"):
        source = FileSource(jpeg)
        source.crop(_window(0.5, 0, 0), 32)


def test_file_source_reads_jpeg_crops_at_a_reduced_size(tmp_path, photo):
    from PIL import Image

    _, tensor = photo
    big = torch.nn.functional.interpolate(tensor, size=(2400, 3200), mode="bilinear", align_corners=False)
    jpeg = tmp_path / "big.jpg"
    Image.fromarray((big[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(jpeg, quality=95)
    source = FileSource(jpeg)
    windows = torch.tensor([[[0.4, -0.3, 0.2], [0.6, 0.2, -0.1]]])  # the smaller: 0.4 × 2400 = 960 px high
    crops = source.crop(windows, 32)
    # 960 px into 32 needs ≥ 64 px (2× oversampling): the DCT-domain decode may shrink the image 8×
    assert source.last_decode == (400, 300)
    full = TensorSource(big).crop(windows, 32)
    assert (crops - full).abs().mean() < 0.02
    source.crop(torch.tensor([[[0.02, 0.0, 0.0]]]), 32)  # a 48-px window needs every pixel
    assert source.last_decode == (3200, 2400)


def test_file_source_crops_are_differentiable_like_the_in_memory_crops(photo):
    """File crops (PIL reads a patch, bilinear sampling inside it) give the windows a gradient that
    points where the in-memory sampler's does, and values close to PIL's own reading of the window."""
    path, tensor = photo
    windows = torch.tensor([[[0.3, -0.4, 0.2], [0.5, 0.3, -0.3], [0.9, 0.05, 0.0]]], requires_grad=True)
    weights = torch.randn(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    (FileSource(path).crop(windows, 32) * weights).sum().backward()
    from_file = windows.grad.clone()
    windows.grad = None
    (TensorSource(tensor).crop(windows, 32) * weights).sum().backward()
    cosine = torch.nn.functional.cosine_similarity(from_file.flatten(), windows.grad.flatten(), dim=0)
    assert torch.isfinite(from_file).all() and cosine > 0.9
    from PIL import Image

    with Image.open(path) as img:  # PIL's direct reading of window 0's box
        x0, y0, x1, y1 = window_to_box(windows.detach()[0, 0], 600, 800).tolist()
        direct = FileSource._to_tensor(img.convert("RGB").resize((32, 32), Image.BILINEAR, box=(x0, y0, x1, y1)))
    assert (FileSource(path).crop(windows.detach(), 32)[0, 0] - direct).abs().mean() < 0.01


def test_file_batch_source_uses_stored_proxies_and_checks_its_windows(photo):
    path, tensor = photo
    stored = torch.rand(2, 3, 32, 32)
    batch = FileBatchSource([path, path], proxies=stored)
    assert batch.proxy(32) is stored and batch.proxy(16).shape == (2, 3, 16, 16)
    assert batch.crop(torch.tensor([[[0.5, 0.0, 0.0]]] * 2), 24).shape == (2, 1, 3, 24, 24)
    with pytest.raises(ValueError, match="windows for 1 images, the batch has 2"):
        batch.crop(torch.tensor([[[0.5, 0.0, 0.0]]]), 24)
    with pytest.raises(ValueError, match="3 proxies for 2 files"):
        FileBatchSource([path, path], proxies=torch.rand(3, 3, 32, 32))


def test_sizes_and_alpha_the_model_cannot_take_are_refused_in_one_line(tmp_path):
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("L", (12_000, 6_000)).save(big)
    with pytest.raises(ImageFileError, match="12000 × 6000 = 72 million pixels, above the limit of 67 million"):
        FileSource(big, channels=1)
    assert FileSource(big, channels=1, max_pixels=72_000_000).width == 12_000  # raised on purpose: read
    # a header claiming 30000² (900 million pixels, where Pillow's own guard raises a long traceback)
    claims = tmp_path / "claims.png"
    Image.new("L", (16, 16)).save(claims)
    data = bytearray(claims.read_bytes())
    data[16:24] = (30_000).to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    claims.write_bytes(bytes(data))
    with pytest.raises(ImageFileError, match="30000 × 30000 = 900 million pixels"):
        FileSource(claims, channels=1)
    assert FileSource(claims, channels=1, max_pixels=None).width == 30_000  # no limit: the benchmarks' own files
    tiny = tmp_path / "tiny.png"
    Image.new("L", (1, 1)).save(tiny)
    with pytest.raises(ImageFileError, match="1 × 1: images must be at least 16 pixels"):
        FileSource(tiny, channels=1)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (64, 64)).save(rgba)
    with pytest.raises(ImageFileError, match="alpha channel .mode RGBA.; the model takes 3"):
        FileSource(rgba, channels=3)
    import inspect

    from saccadelib import cli

    default = inspect.signature(FileSource).parameters["max_pixels"].default
    assert cli.MAX_PIXELS == default  # the command line's default is the library's


def test_a_photo_is_decoded_once_for_its_proxy_and_its_crops(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, size=(1500, 2000, 3), dtype=np.uint8)).save(path, quality=90)
    source = FileSource(path, channels=3)
    source.proxy(32)
    source.crop(torch.tensor([[[0.35, 0.0, 0.0], [0.35, 0.5, -0.5]]]), 32)
    assert source.decodes == 1 and source.last_decode == (250, 188)  # both at 1/8: one decode, shared
    source.crop(torch.tensor([[[0.02, 0.0, 0.0]]]), 32)  # a small window needs more detail: a new decode
    assert source.decodes == 2 and source.last_decode[0] > 250


def test_a_lossless_file_is_decoded_once_unless_a_batch_would_hold_large_decodes(tmp_path, monkeypatch):
    from PIL import Image


    rng = np.random.default_rng(0)
    path = tmp_path / "canvas.png"
    Image.fromarray(rng.integers(0, 255, size=(300, 400), dtype=np.uint8)).save(path)
    windows = torch.tensor([[[0.3, 0.0, 0.0]]])
    single = FileSource(path, channels=1)  # one image, as predict reads it: its full decode is shared
    single.proxy(32), single.crop(windows, 16)
    assert single.decodes == 1
    batch = FileBatchSource([path, path], channels=1)  # small images: kept for the crops too
    batch.proxy(32), batch.crop(windows.repeat(2, 1, 1), 16)
    assert [s.decodes for s in batch.sources] == [1, 1]
    monkeypatch.setattr(FileSource, "KEEP_PIXELS", 100 * 100)  # as if the files were large
    batch = FileBatchSource([path, path], channels=1)
    batch.proxy(32), batch.crop(windows.repeat(2, 1, 1), 16)
    assert [s.decodes for s in batch.sources] == [2, 2] and all(s._kept is None for s in batch.sources)


def test_a_lossless_file_reads_exactly_as_its_canvas_in_memory(tmp_path):
    from PIL import Image

    from saccadelib.sources import TensorSource

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, size=(2, 240, 320), dtype=np.uint8)
    paths = []
    for k, image in enumerate(pixels):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(image).save(paths[-1])
    memory = TensorSource(torch.from_numpy(pixels).float().div(255).unsqueeze(1))
    windows = torch.tensor([[[0.1, -0.3, 0.2], [0.5, 0.4, -0.1]]] * 2, requires_grad=True)
    files = FileBatchSource(paths, channels=1)  # what training on a folder reads
    assert torch.equal(files.proxy(32), memory.proxy(32))
    read = files.crop(windows, 16)
    assert torch.equal(read, memory.crop(windows, 16))
    read.sum().backward()  # the windows still learn through the crops
    assert windows.grad.abs().sum() > 0
