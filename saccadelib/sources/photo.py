"""Image files as sources: large photos on disk (JPEG, PNG, TIFF…) read through the same ``proxy`` and
``crop`` calls as in-memory images, without holding the full-resolution image."""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..names import MAX_PIXELS
from ..sampler import window_to_box
from .base import HOW_TO_PYRAMID, MIN_SIDE, ImageFileError, ImageSource
from .memory import TensorSource
from .patches import sample_patches

ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
LEAN_FORMATS = ("JPEG", "MPO")  # formats PIL can decode at a reduced size (FileSource's lean path)


# Greyscale modes of more than 8 bits (16-bit PNG and TIFF, 32-bit integer, float). PIL's convert("L")
# clips them at 255, so a full-range 16-bit image would read almost white: they are scaled by their
# type's range instead (``_grey_to_8bit``).
WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _grey_to_8bit(img, path: Path):
    """``img`` (a WIDE_GREY mode) as 8-bit grey, scaled by its type's range: integers by 65535 (16 bits;
    PIL holds a 16-bit PNG as "I" or "I;16"), floats by 1. Values outside that range are refused: their
    scale is not known."""
    array = np.asarray(img)
    if img.mode == "F" and not np.isfinite(array).all():  # NaN compares false: it would read as 0 unasked
        bad = int((~np.isfinite(array)).sum())
        raise ImageFileError(f"{path} has {bad} pixel(s) that are not a number (NaN) or infinite: fill them "
                             "(e.g. with 0 or the image's mean) and save it again")
    top = 1.0 if img.mode == "F" else 65535.0
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > top:
        kind = "floating-point" if img.mode == "F" else "integer"
        raise ImageFileError(f"{path} is {kind} greyscale (mode {img.mode}) with values {low:g}..{high:g}, outside "
                             f"0..{top:g}: rescale it to that range (or to 8 bits) and save it again")
    return Image.fromarray(np.rint(array.astype(np.float64) * (255.0 / top)).astype(np.uint8), mode="L")


@contextmanager
def pillow_limit_lifted():
    """Pillow's own pixel limit off while a file whose size this module has checked is opened."""
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


class FileSource(ImageSource):
    """One large photo on disk (JPEG, PNG, TIFF…), for inference (crops are not differentiable).

    Neither the proxy nor the crops need the full-resolution decode of a JPEG: its DCT-domain reduction
    (PIL ``draft``) decodes at 1/2, 1/4 or 1/8 of the side directly, and a crop only needs as much
    resolution as its window has pixels per crop pixel. So the proxy is read at ≥ 4 pixels per proxy
    pixel and the crops at ≥ ``CROP_OVERSAMPLE`` source pixels per crop pixel (then anti-aliased by PIL's
    filter). Lossless formats (PNG, TIFF, …), which PIL decodes only in full, are read from their full
    decode exactly as an in-memory canvas is (``TensorSource``). ``last_decode`` records the size the
    crops were read at.
    An image whose channels differ from ``channels`` is refused, or with ``convert`` converted (colour to
    luma, PIL's "L"; grey to RGB by repeating it).
    """
    CROP_OVERSAMPLE = 2
    # A full-size decode is kept for the crops when the image is this small, or always with ``keep_full``
    # (one image at a time, as ``predict`` reads): a batch of large lossless files must not hold them all.
    KEEP_PIXELS = 2048 * 2048

    def __init__(self, path: str | Path, channels: int = 3, max_pixels: int | None = MAX_PIXELS, convert: bool = False,
                 keep_full: bool = True):
        if channels not in (1, 3):
            raise ImageFileError(f"channels must be 1 or 3, got {channels}")
        self.path = Path(path)
        self.channels, self.count = channels, 1
        self._mode = "L" if channels == 1 else "RGB"
        try:
            with pillow_limit_lifted(), Image.open(self.path) as img:  # the header only: no pixels decoded
                self.width, self.height = img.size
                mode, transparent = img.mode, "transparency" in img.info
                self.reducible = img.format in LEAN_FORMATS  # JPEG: decodes at 1/2-1/8; others only in full
            if max_pixels is not None and self.width * self.height > max_pixels:  # None: files made here
                raise ImageFileError(f"{self.path} is {self.width} × {self.height} = {self.width * self.height / 1e6:.0f} "
                                     f"million pixels, above the limit of {max_pixels / 1e6:.0f} million decoded "
                                     f"pixels (--max-pixels; a {img.format or 'file'} is decoded whole): "
                                     f"{HOW_TO_PYRAMID}, or raise the limit if you trust the file")
            with pillow_limit_lifted(), Image.open(self.path) as probe:
                probe.verify()  # catches truncated and corrupt files before any work
        except FileNotFoundError:
            raise ImageFileError(f"image file not found: {self.path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ImageFileError(f"cannot read image {self.path}: {err}") from None
        if min(self.width, self.height) < MIN_SIDE:
            raise ImageFileError(f"{self.path} is {self.width} × {self.height}: images must be at least {MIN_SIDE} "
                                 "pixels on each side")
        if mode in ALPHA_MODES or transparent:
            raise ImageFileError(f"{self.path} has an alpha channel (mode {mode}); the model takes {channels}: "
                                 "flatten it onto a background and save it without alpha")
        grey = mode in ("1", "L", *WIDE_GREY)
        if convert:  # asked for: colour to luma (PIL's "L"), grey to RGB by repeating it
            grey = channels == 1
        if grey and channels == 3:
            raise ImageFileError(f"{self.path} is greyscale (mode {mode}) but the model takes 3 channels: convert "
                                 "it to RGB (PIL: .convert('RGB'); training on a folder: --train convert_channels=true) "
                                 "or use a model trained on greyscale images")
        if not grey and channels == 1:
            raise ImageFileError(f"{self.path} is colour (mode {mode}) but the model takes 1 channel: convert it "
                                 "to greyscale (PIL: .convert('L'); training on a folder: --train convert_channels=true, "
                                 "or --set channels=3) or use a model trained on colour images")
        self.detail_px = max(self.height, self.width)
        self.last_decode: tuple[int, int] | None = None
        self.decodes = 0  # how many times pixels were decoded (the proxy and crops of a JPEG share one)
        self._kept = None  # (size, image): the last decode (a full-size one only when small or keep_full)
        self.keep_full = keep_full
        self._pixels = None  # a lossless file's decode as floats, kept with keep_full

    def _open(self):
        with pillow_limit_lifted():  # the size was checked against max_pixels when the source was made
            return Image.open(self.path)

    def _decoded(self, img):
        try:
            if img.mode in WIDE_GREY:
                img = _grey_to_8bit(img, self.path)
            return img.convert(self._mode)
        except OSError as err:  # truncated or corrupt data shows only when pixels are decoded
            raise ImageFileError(f"cannot decode image {self.path}: {err}") from None

    def overview(self, longest: int = 2048) -> torch.Tensor:
        """The photo decoded at the coarsest reduction that still gives ``longest`` pixels on its longest side."""
        scale = min(1.0, longest / max(self.width, self.height))
        return self._to_tensor(self._reduced((max(1, round(self.width * scale)), max(1, round(self.height * scale)))))

    def _reduced(self, request: tuple[int, int]):
        """The image decoded at the JPEG reduction (1/2..1/8, PIL ``draft``) that still gives ``request``
        pixels, or in full for formats that cannot reduce. The last decode is kept, so the proxy and the
        crops of one image share it when they need the same reduction (a full-size decode only under
        ``KEEP_PIXELS`` or with ``keep_full``)."""
        with self._open() as img:
            img.draft(self._mode, request)
            size = img.size
            if self._kept is not None and self._kept[0] == size:
                return self._kept[1]
            decoded = self._decoded(img)
        self.decodes += 1
        if self.keep_full or size != (self.width, self.height) or size[0] * size[1] <= self.KEEP_PIXELS:
            self._kept = (size, decoded)
        return decoded

    @staticmethod
    def _to_tensor(img) -> torch.Tensor:
        # channels first while still bytes, then one float copy scaled in place: a large image's peak
        # memory is its float pixels once, not two float arrays at a time
        array = torch.from_numpy(np.array(img))  # writable: torch warns on a read-only view
        array = array.unsqueeze(0) if array.dim() == 2 else array.permute(2, 0, 1)
        return array.contiguous().float().div_(255.0)

    def decode(self) -> torch.Tensor:
        """The whole image at full resolution, [1, C, H, W] float in [0, 1] (what a tile model needs)."""
        with self._open() as img:
            return self._to_tensor(self._decoded(img)).unsqueeze(0)

    def pixels(self) -> TensorSource:
        """The full decode as an in-memory source (a lossless file's decode kept under the rules of
        ``_reduced``): what a lossless file's proxy and crops are read from, exactly as from a canvas in
        memory, so that training, evaluation and prediction see the same pixels from a file as from the
        canvas it was saved from."""
        if self._pixels is not None:
            return self._pixels
        pixels = TensorSource(self._to_tensor(self._reduced((self.width, self.height))).unsqueeze(0))
        if self.keep_full:  # one image at a time: its proxy and crops share one conversion too
            self._pixels = pixels
        return pixels

    def proxy(self, size: int) -> torch.Tensor:
        if not self.reducible:
            return self.pixels().proxy(size)
        small = self._reduced((size * 4, size * 4)).resize((size, size), Image.BILINEAR, reducing_gap=2.0)
        return self._to_tensor(small).unsqueeze(0)

    def crop(self, windows, size, supersample=None):
        """Crops [1, T, C, size, size], differentiable in the windows.

        Each window is read from the decode by PIL (anti-aliased) into a patch a few crop pixels wider
        than the window, at the crop's pixel density, and the crop is bilinearly sampled from the patch
        at the window's (differentiable) sample points: at the window itself these are the patch's
        pixel centres, so the values are PIL's, and the gradient is the patch's local image gradient.
        Memory is a few crops per window whatever the image size.
        """
        if windows.shape[0] != 1:
            raise ValueError("a FileSource holds one image: windows must be [1, T, 3]")
        if not self.reducible:
            self.last_decode = (self.width, self.height)
            return self.pixels().crop(windows.cpu(), size, supersample).to(device=windows.device, dtype=windows.dtype)
        sample_box = window_to_box(windows[0].cpu().to(torch.float64), self.height, self.width)  # keeps the gradient
        boxes = sample_box.detach()
        # The most demanding window decides how far the decode may be reduced (JPEG only; 1 elsewhere).
        smallest_px = float((boxes[:, 2:] - boxes[:, :2]).min()) if len(boxes) else float(size)
        request = max(1, math.ceil(max(self.width, self.height) * self.CROP_OVERSAMPLE * size / max(smallest_px, 1e-6)))
        patches, patch_boxes = [], []
        img = self._reduced((max(1, request * self.width // max(self.width, self.height)),
                             max(1, request * self.height // max(self.width, self.height))))
        self.last_decode = (img.width, img.height)
        for box in boxes.tolist():
            patch, patch_box = self._patch(img, box, size)
            patches.append(patch)
            patch_boxes.append(patch_box)
        crops = sample_patches(patches, patch_boxes, sample_box, size)
        return crops.unsqueeze(0).to(device=windows.device, dtype=windows.dtype)

    PATCH_MARGIN = 2  # crop pixels of context on each side: room for the gradient and small moves

    def _patch(self, img, box, size):
        """The window's box widened by PATCH_MARGIN crop pixels (clipped to the image), read by PIL at
        the crop's density; returns (patch [C, h, w], its box in full-resolution pixels)."""
        x0, y0, x1, y1 = box
        px, py = (x1 - x0) / size, (y1 - y0) / size  # full-resolution pixels per crop pixel
        m = self.PATCH_MARGIN
        bx0, by0 = max(0.0, x0 - m * px), max(0.0, y0 - m * py)
        bx1, by1 = min(float(self.width), x1 + m * px), min(float(self.height), y1 + m * py)
        w = max(1, round((bx1 - bx0) / max(px, 1e-9)))
        h = max(1, round((by1 - by0) / max(py, 1e-9)))
        sx, sy = img.width / self.width, img.height / self.height  # 1 unless the decode was reduced
        patch = img.resize((w, h), Image.BILINEAR, box=(bx0 * sx, by0 * sy, bx1 * sx, by1 * sy))
        return self._to_tensor(patch), (bx0, by0, bx1, by1)
