"""Pyramidal tiled TIFFs read a few tiles at a time: close to the in-memory image, counted, guarded."""
import numpy as np
import pytest
import torch

from saccadelib.sources import FileBatchSource, FileSource, ImageFileError, PyramidSource, open_image
from saccadelib.datasets.pyramids import box_reduce, write_pyramid
from saccadelib.sources import TensorSource


def _smooth(side: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth image (bicubic upsample of noise), uint8 [H, W] or [H, W, 3]: box levels of it stay close
    to resampling the full image, which is what the tolerance below is about."""
    rng = np.random.default_rng(seed)
    small = torch.tensor(rng.random((channels, side // 32, side // 32))).float()
    image = torch.nn.functional.interpolate(small[None], size=(side, side), mode="bicubic", align_corners=False)[0]
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return array[..., 0] if channels == 1 else array


def _in_memory(array: np.ndarray) -> TensorSource:
    pixels = torch.from_numpy(array).float() / 255
    return TensorSource((pixels[None] if pixels.dim() == 2 else pixels.permute(2, 0, 1))[None])


@pytest.fixture(scope="module")
def colour_pyramid(tmp_path_factory):
    array = _smooth(1024)
    path = write_pyramid(tmp_path_factory.mktemp("pyramid") / "colour.tif", array, tile=128)
    return path, array


def test_levels_are_box_reductions_written_in_tiles(colour_pyramid):
    path, array = colour_pyramid
    source = PyramidSource(path)
    assert source.sizes == [(1024, 1024), (512, 512), (256, 256)]
    assert np.array_equal(box_reduce(np.array([[0, 2], [4, 7]], dtype=np.uint8)), np.array([[3]], dtype=np.uint8))
    level1 = source.read(1, 0, 512, 0, 512)
    assert torch.equal(level1, torch.from_numpy(box_reduce(array)).permute(2, 0, 1).float() / 255)


@pytest.mark.parametrize("layout", ["contig", "separate", "grey16"])
def test_a_region_is_read_tile_by_tile_exactly_as_the_whole_level_decodes(tmp_path, layout):
    import tifffile

    rng = np.random.default_rng(1)
    if layout == "grey16":
        array = rng.integers(0, 65535, size=(300, 520), dtype=np.uint16)
    else:
        array = rng.integers(0, 255, size=(300, 520, 3), dtype=np.uint8)
    path = tmp_path / f"{layout}.tif"
    planar = "separate" if layout == "separate" else None
    stored = np.moveaxis(array, -1, 0) if planar else array
    tifffile.imwrite(path, stored, tile=(64, 128), compression="zlib", planarconfig=planar,
                     photometric="rgb" if array.ndim == 3 else "minisblack")
    source = PyramidSource(path, channels=1 if array.ndim == 2 else 3)
    for y0, y1, x0, x1 in [(0, 300, 0, 520), (10, 11, 500, 520), (63, 130, 127, 390), (299, 300, 0, 1)]:
        assert np.array_equal(source._region(0, y0, y1, x0, x1), array[y0:y1, x0:x1])
    planes = 3 if planar else 1
    assert source.tiles_read == planes * (5 * 5 + 2 + 3 * 4 + 1)


def test_proxy_and_crops_stay_within_the_stated_tolerance_of_the_in_memory_image(colour_pyramid):
    path, array = colour_pyramid
    source, memory = PyramidSource(path), _in_memory(array)
    assert (source.proxy(32) - memory.proxy(32)).abs().max() < 0.01
    assert source.proxy_level == 2  # 256 pixels for a 32² proxy: the smallest level with 4 per proxy pixel
    torch.manual_seed(0)
    windows = torch.stack([torch.rand(8) * 0.5 + 0.02, torch.rand(8) * 1.2 - 0.6, torch.rand(8) * 1.2 - 0.6], -1)[None]
    from_file, from_memory = windows.clone().requires_grad_(True), windows.clone().requires_grad_(True)
    crops, expected = source.crop(from_file, 32), memory.crop(from_memory, 32)
    assert crops.shape == (1, 8, 3, 32, 32)
    assert (crops - expected).abs().max() < 0.02 and (crops - expected).abs().mean() < 0.003
    assert {0, 2} <= set(source.last_levels)  # small windows from level 0, large ones from a reduction
    weights = torch.randn_like(crops)
    (crops * weights).sum().backward()
    (expected * weights).sum().backward()
    similarity = torch.nn.functional.cosine_similarity(from_file.grad.flatten(), from_memory.grad.flatten(), dim=0)
    assert similarity > 0.99  # training through a pyramid follows the same gradient


def test_windows_over_the_edge_or_off_the_image_read_zeros_there_as_in_memory(colour_pyramid):
    path, array = colour_pyramid
    source, memory = PyramidSource(path), _in_memory(array)
    windows = torch.tensor([[[0.3, 0.9, -0.2], [0.1, -1.0, 0.95], [0.2, 1.6, 0.0], [0.05, -3.0, -3.0]]])
    crops, expected = source.crop(windows, 32), memory.crop(windows, 32)
    assert expected[0, 2:].abs().max() == 0  # wholly off the image: nothing
    assert (crops - expected).abs().max() < 0.02 and (crops - expected).abs().mean() < 0.003
    assert crops[0, 0, :, :, -4:].abs().max() < 0.01  # the part over the right edge is black, not the edge repeated


def test_a_small_window_reads_a_few_tiles_of_a_large_file(tmp_path):
    array = _smooth(4096, channels=1)
    path = write_pyramid(tmp_path / "large.tif", array, tile=256)
    source = PyramidSource(path, channels=1)
    source.crop(torch.tensor([[[0.01, 0.1, -0.2]]]), 32)  # 41 pixels wide: level 0, within one or two tiles
    assert source.last_levels == [0] and 1 <= source.tiles_read <= 4
    assert source.bytes_read < 0.01 * source.file_bytes
    source.proxy(32)  # from the 256² level: one tile
    assert source.proxy_level == 4 and source.tiles_read <= 5 and source.decoded_pixels < 6 * 256 * 256


def test_a_closed_pyramid_frees_its_tile_tables_without_waiting_for_the_cyclic_collector(colour_pyramid):
    import gc
    import weakref

    path, _ = colour_pyramid
    gc.disable()
    try:
        source = PyramidSource(path)
        source.proxy(32)
        source.crop(torch.tensor([[[0.1, 0.0, 0.0]]]), 16)
        levels = source.levels._levels  # each level's page holds its tile tables
        tables = [weakref.ref(level) for level in levels] + [weakref.ref(level.pages[0]) for level in levels]
        del source, levels  # as predict drops it
        assert [ref() for ref in tables] == [None] * len(tables)
    finally:
        gc.enable()


def test_open_image_sends_tiled_tiffs_to_the_pyramid_reader_and_guards_what_is_decoded(tmp_path):
    from PIL import Image

    array = _smooth(512, channels=1)
    pyramid = write_pyramid(tmp_path / "p.tif", array, tile=128)
    flat = tmp_path / "flat.png"
    Image.fromarray(array).save(flat)
    assert isinstance(open_image(pyramid, channels=1), PyramidSource)
    assert isinstance(open_image(flat, channels=1), FileSource)
    # the limit counts decoded pixels: the pyramid's proxy reads a small level, the PNG is decoded whole
    small_limit = 300 * 300  # above the pyramid's 256² level, below the PNG's 512²
    open_image(pyramid, channels=1, max_pixels=small_limit).proxy(32)
    with pytest.raises(ImageFileError, match="tiled pyramidal TIFF.*vips tiffsave"):
        open_image(flat, channels=1, max_pixels=small_limit)
    # one level, tiled: readable window by window, but its proxy would need the whole image
    import tifffile

    single = tmp_path / "single.tif"
    tifffile.imwrite(single, array, tile=(128, 128))
    source = open_image(single, channels=1, max_pixels=small_limit)
    source.crop(torch.tensor([[[0.05, 0.0, 0.0]]]), 16)
    with pytest.raises(ImageFileError, match="no level small enough"):
        source.proxy(32)


def test_channels_are_refused_or_converted_as_for_other_files(colour_pyramid, tmp_path):
    path, array = colour_pyramid
    with pytest.raises(ImageFileError, match="colour but the model takes 1 channel"):
        PyramidSource(path, channels=1)
    grey = PyramidSource(path, channels=1, convert=True)
    expected = 0.299 * array[..., 0] + 0.587 * array[..., 1] + 0.114 * array[..., 2]
    level2 = grey.read(0, 0, 8, 0, 8)[0].numpy() * 255
    assert np.abs(level2 - expected[:8, :8]).max() < 1e-3
    batch = FileBatchSource([path, path], channels=3)  # training on a folder of pyramids
    assert batch.proxy(32).shape == (2, 3, 32, 32)
    import pickle

    sent = pickle.loads(pickle.dumps(batch))  # from a DataLoader worker to the main process: reopened there
    windows = torch.tensor([[[0.2, 0.0, 0.0]], [[0.1, 0.5, 0.5]]])
    assert torch.equal(sent.crop(windows, 16), batch.crop(windows, 16))
    assert batch.crop(torch.tensor([[[0.2, 0.0, 0.0]], [[0.1, 0.5, 0.5]]]), 16).shape == (2, 1, 3, 16, 16)


def test_predict_reads_a_pyramid_and_says_what_it_read(colour_pyramid, tmp_path):
    from saccadelib import inference
    from saccadelib.model import ModelConfig, VariationalSaccading

    path, _ = colour_pyramid
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(n_classes=3, channels=3, glimpses=2)).eval()
    result = inference.predict(path, model, overlay=tmp_path / "overlay.png")
    read = result["read"]
    assert read["tiles_read"] > 0 and 0 < read["bytes_read"] < read["file_bytes"]
    assert result["image_size"] == [1024, 1024] and (tmp_path / "overlay.png").exists()


def test_a_scaled_megapixel_canvas_is_the_canvas_at_its_level_and_leaves_black_tiles_out(tmp_path):
    import tifffile

    from saccadelib.datasets import megapixel_pyramid

    rng = np.random.default_rng(1)
    canvas = np.zeros((320, 320), dtype=np.uint8)
    for x, y in rng.integers(0, 300, size=(6, 2)):  # a few bright patches on black, as the canvases are
        canvas[y:y + 20, x:x + 20] = rng.integers(1, 256, size=(20, 20))
    path = megapixel_pyramid.write_scaled_canvas(canvas, tmp_path / "c.tif", factor=8, tile=64)
    source = PyramidSource(path, channels=1)
    assert source.sizes[:5] == [(2560, 2560), (1280, 1280), (640, 640), (320, 320), (160, 160)]
    as_bytes = lambda t: (t[0].numpy() * 255).round().astype(np.uint8)  # noqa: E731
    assert np.array_equal(as_bytes(source.read(3, 0, 320, 0, 320)), canvas)  # level log2(8): the canvas itself
    assert np.array_equal(as_bytes(source.read(4, 0, 160, 0, 160)), box_reduce(canvas))
    grown = np.kron(canvas, np.ones((8, 8), dtype=np.uint8))
    assert np.array_equal(as_bytes(source.read(0, 1000, 1400, 700, 900)), grown[1000:1400, 700:900])
    with tifffile.TiffFile(path) as tif:
        counts = np.asarray(tif.pages[0].databytecounts)
    assert (counts == 0).sum() > len(counts) // 2  # black tiles are not stored
    # a window at the canvas's detail reads the canvas's own pixels: the same crop as the 320² canvas in memory
    windows = torch.tensor([[[0.1, 0.2, -0.3], [0.05, -0.5, 0.4]]])
    same = _in_memory(canvas).crop(windows, 16)
    assert torch.allclose(source.crop(windows, 16), same, atol=1e-6) and source.last_levels == [3, 2]


def _stored_canvases(monkeypatch, side=300, n=2):
    """A stand-in for a stored Megapixel MNIST test split: ``n`` black canvases with one bright block."""
    from saccadelib.datasets import megapixel

    canvases = torch.zeros(n, side, side, dtype=torch.uint8)
    canvases[:, 100:128, 50:78] = 255

    class Images:
        def __getitem__(self, part):
            return type("Dense", (), {"dense": lambda _: canvases[part]})()

    class Stored:
        config = megapixel.MegapixelConfig(side=side)
        images = Images()
        labels = {name: torch.tensor([3, 7] * (n // 2)) for name in megapixel.LABELS}

        def __len__(self):
            return n

    monkeypatch.setattr(megapixel, "stored_set", lambda split, root=None: Stored())


def test_the_export_writes_labelled_files_and_resumes(tmp_path, monkeypatch):
    from saccadelib.datasets import megapixel_pyramid

    _stored_canvases(monkeypatch)
    out = tmp_path / "scaled"
    written = megapixel_pyramid.export(1200, "test", out, limit=1, log=None)
    assert written.read_text().splitlines() == ["file,label,majority,max,top", "00000.tif,3,3,3,3"]
    first = (out / "00000.tif").stat().st_mtime_ns
    megapixel_pyramid.export(1200, "test", out, log=None)  # the rest; the first file is kept
    assert (out / "00001.tif").exists() and (out / "00000.tif").stat().st_mtime_ns == first
    assert PyramidSource(out / "00001.tif", channels=1).sizes[0] == (1200, 1200)
    with pytest.raises(ValueError, match="power of two"):
        megapixel_pyramid.export(1000, "test", out)


def test_slides_read_through_openslide_as_the_tiff_reader_reads_them(colour_pyramid, tmp_path):
    import shutil

    from saccadelib.sources import SlideSource

    path, _ = colour_pyramid
    slide_path = tmp_path / "slide.svs"  # a slide's name: OpenSlide reads it (as a generic tiled TIFF)
    shutil.copyfile(path, slide_path)
    slide, tiff = open_image(slide_path), PyramidSource(path)
    assert isinstance(slide, SlideSource) and slide.sizes == tiff.sizes
    assert torch.equal(slide.read(1, 10, 90, 200, 330), tiff.read(1, 10, 90, 200, 330))
    windows = torch.tensor([[[0.3, 0.2, -0.1], [0.04, -0.6, 0.5]]])
    assert torch.allclose(slide.crop(windows, 16), tiff.crop(windows, 16), atol=1e-6)
    assert torch.allclose(slide.proxy(32), tiff.proxy(32), atol=1e-6) and slide.decoded_pixels > 0
    with pytest.raises(ImageFileError, match="cannot read slide"):
        (tmp_path / "broken.ndpi").write_bytes(b"not a slide")
        open_image(tmp_path / "broken.ndpi")


def test_the_tifffile_internals_the_tiff_reader_uses_are_there():
    """TiffLevels reads a window's tiles through tifffile's segment reader and tile decoder, not its public
    API: pyproject pins the versions they are tested with, and this fails first where a release moves them."""
    import inspect

    import tifffile

    assert hasattr(tifffile.FileHandle, "read_segments") and hasattr(tifffile.TiffPage, "decode")
    assert {"offsets", "bytecounts", "indices", "sort"} <= set(inspect.signature(tifffile.FileHandle.read_segments).parameters)
    # decode is a cached property returning the page's decoder; the region tests call it with jpegtables


def test_the_pyramid_reader_speaks_openslides_conventions_and_agrees_with_openslide(tmp_path):
    """Level sizes as (w, h), level downsamples, regions at a level-0 (x, y) with a (w, h) in the level's
    pixels, thumbnails and microns per pixel: checked against OpenSlide on the same file."""
    openslide = pytest.importorskip("openslide", reason="the slides extra: pip install 'saccadelib[slides]'")
    from PIL import Image

    from saccadelib.datasets.pyramids import write_pyramid

    pixels = np.random.default_rng(1).integers(0, 255, (600, 900, 3), dtype=np.uint8)
    path = write_pyramid(tmp_path / "tagged.tif", pixels, tile=128, smallest=128, mpp=0.25)
    ours, theirs = PyramidSource(path, channels=3), openslide.OpenSlide(str(path))
    assert ours.dimensions == theirs.dimensions == (900, 600)
    assert ours.level_dimensions == theirs.level_dimensions
    assert ours.level_downsamples == pytest.approx(theirs.level_downsamples)
    assert [ours.get_best_level_for_downsample(d) for d in (1, 3, 9)] == \
        [theirs.get_best_level_for_downsample(d) for d in (1, 3, 9)]
    assert ours.mpp == (0.25, 0.25) and ours.properties["openslide.mpp-x"] == theirs.properties["openslide.mpp-x"]
    for location, level, size in (((300, 200), 1, (50, 40)), ((0, 0), 0, (130, 70)), ((850, 580), 0, (100, 50))):
        region = ours.read_region(location, level, size)
        theirs_rgba = np.asarray(theirs.read_region(location, level, size), dtype=np.float32)
        inside = theirs_rgba[..., 3] > 0  # OpenSlide's outside is transparent; ours reads 0 there
        assert region.shape == (3, size[1], size[0])
        assert np.abs(region.permute(1, 2, 0).numpy()[inside] * 255 - theirs_rgba[..., :3][inside]).max() < 1e-3
        assert (region.permute(1, 2, 0).numpy()[~inside] == 0).all()
    assert ours.get_thumbnail((100, 100)).size == theirs.get_thumbnail((100, 100)).size
    assert isinstance(ours.get_thumbnail((64, 64)), Image.Image)
    untagged = PyramidSource(write_pyramid(tmp_path / "plain.tif", pixels[:256, :256], tile=128), channels=3)
    assert untagged.mpp is None and "openslide.mpp-x" not in untagged.properties


def test_predict_reports_each_window_in_level0_pixels_and_in_microns_where_known(tmp_path):
    from saccadelib import inference
    from saccadelib.model import ModelConfig, VariationalSaccading
    from saccadelib.datasets.pyramids import write_pyramid

    pixels = np.random.default_rng(2).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    path = write_pyramid(tmp_path / "tagged.tif", pixels, tile=128, smallest=128, mpp=0.5)
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(n_classes=3, channels=3, glimpses=2)).eval()
    result = inference.predict(path, model)
    for window in result["windows"]:
        x0, y0, x1, y1 = window["box"]
        assert (window["x"], window["y"]) == pytest.approx((x0, y0), abs=0.01)
        assert (window["w"], window["h"]) == pytest.approx((x1 - x0, y1 - y0), abs=0.02)
        assert window["microns"]["w"] == pytest.approx(0.5 * window["w"], abs=0.02)
    plain = inference.predict(write_pyramid(tmp_path / "plain.tif", pixels, tile=128, smallest=128), model)
    assert all("microns" not in w for w in plain["windows"])


def test_bench_pyramid_scores_the_same_canvases_at_every_side_and_times_predict(tmp_path, monkeypatch):
    import json

    from saccadelib.bench import pyramid
    from saccadelib.config import to_dict
    from saccadelib.model import ModelConfig, VariationalSaccading

    _stored_canvases(monkeypatch)
    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=10, channels=1, glimpses=2, hidden=32, proxy_features=32, crop_features=32,
                      latent_features=16, width=8, rnn_layers=1)
    meta = {"name": "saccade", "task": "megapixel_majority", "config": json.loads(json.dumps(to_dict(cfg)))}
    torch.save({"model": VariationalSaccading(cfg).state_dict(), "model_meta": meta, "epoch": 1}, tmp_path / "best.pt")
    from saccadelib.registry import build, config_for

    resnet_cfg = config_for("resnet18_downsampled", 10, {"input_side": 500, "channels": 1})
    resnet_meta = {"name": "resnet18_downsampled", "task": "megapixel_majority",
                   "config": json.loads(json.dumps(to_dict(resnet_cfg)))}
    torch.save({"model": build("resnet18_downsampled", resnet_cfg).state_dict(), "model_meta": resnet_meta,
                "epoch": 1}, tmp_path / "resnet.pt")
    result = pyramid.run(tmp_path / "best.pt", sides=(1200,), limit=2, cost_files=1, repeats=1,
                         resnet_checkpoint=tmp_path / "resnet.pt", out=tmp_path / "pyramid.json",
                         data_root=tmp_path / "data", log=None)
    small, large = result["rows"]
    assert (small["side"], small["format"], large["side"], large["format"]) == (300, "png", 1200, "pyramidal tiff")
    assert small["canvases"] == large["canvases"] == 2 and small["accuracy"] == large["accuracy"]
    assert large["tiles_read"] > 0 and 0 < large["bytes_read_share"] < 1 and large["resnet_ms"] > 0
    assert large["fresh_call_s"] > 0.5 and large["fresh_call_peak_mib"] > 100  # a fresh Python with torch
    assert large["resnet_accuracy"] in (0.0, 0.5, 1.0) and "resnet_accuracy" not in small
    table = (tmp_path / "pyramid.md").read_text()
    assert "| 1,200² | pyramidal tiff |" in table and f"| {100 * large['resnet_accuracy']:.1f}% |" in table


def test_training_on_a_folder_of_large_pyramids(tmp_path, monkeypatch):
    """A folder of pyramids above Pillow's own pixel limit trains through the shared loop, with workers."""
    import shutil

    from PIL import Image

    from saccadelib.train import train_model

    array = np.zeros((16_384, 16_384), dtype=np.uint8)  # 268 million pixels, mostly black: small files
    for k, (name, value) in enumerate((("a", 255), ("b", 120))):
        array[:] = 0
        array[4_000:6_000, 4_000:6_000] = value
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        first = write_pyramid(folder / "0.tif", array, tile=512, smallest=512)
        for copy in range(1, 4):
            shutil.copyfile(first, folder / f"{copy}.tif")
    assert Image.MAX_IMAGE_PIXELS < 16_384 ** 2  # Pillow alone would refuse these files
    summary = train_model("saccade", "folder", tmp_path / "run", {"channels": 1, "glimpses": 2},
                          {"data_root": str(tmp_path / "images"), "epochs": 1, "batch_size": 4, "train_size": 4,
                           "workers": 1, "val_size": 2, "test_size": 2, "progress": "none"})
    assert summary["epochs_run"] == 1 and "test" in summary
