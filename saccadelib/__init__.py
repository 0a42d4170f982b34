"""saccadelib: Variational Saccading (Ramapuram et al.) and the study that reproduces it.

The public functions (docs/api.md), the ones the command line calls:
    saccadelib.load(checkpoint)                          a trained model, with its meta
    saccadelib.predict(image, model, overlay=None)       class, probabilities and glimpse boxes
    saccadelib.score_folder(model, images, labels, out_dir=None)  accuracy and per-image rows on labelled files
"""
__version__ = "0.1.0"
__all__ = ["load", "predict", "score_folder", "__version__"]


def __getattr__(name: str):
    # imported on first use, so that ``python -m saccadelib --help`` does not pay for torch and the models
    if name in ("load", "predict", "score_folder"):
        from . import inference  # noqa: PLC0415 (start-up: --help answers without torch)

        return getattr(inference, name)
    raise AttributeError(f"module 'saccadelib' has no attribute {name!r}")
