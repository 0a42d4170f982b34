"""Image sources: an image (or a batch) seen through a proxy and crops. In memory (``TensorSource``,
``UpsampledSource``), a photo on disk (``FileSource``), a tiled pyramidal TIFF (``PyramidSource``) or a
slide (``SlideSource``); ``open_image`` is the one place that picks the reader for a file."""
from .base import HOW_TO_PYRAMID, MIN_SIDE, ImageFileError, ImageSource
from .memory import TensorSource, UpsampledSource
from .open import FileBatchSource, open_image
from .photo import FileSource
from .levels import HOW_TO_SLIDES, SLIDE_SUFFIXES, TIFF_SUFFIXES, NotTiled, SlideLevels, TiffLevels
from .pyramid import PyramidSource, SlideSource, is_tiled_tiff

__all__ = ["HOW_TO_PYRAMID", "HOW_TO_SLIDES", "MIN_SIDE", "SLIDE_SUFFIXES", "TIFF_SUFFIXES", "FileBatchSource",
           "FileSource", "ImageFileError", "ImageSource", "NotTiled", "PyramidSource", "SlideLevels", "SlideSource",
           "TensorSource", "TiffLevels",
           "UpsampledSource", "is_tiled_tiff", "open_image"]
