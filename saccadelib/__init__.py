"""saccadelib: Variational Saccading (Ramapuram et al.) and the study that reproduces it."""
__version__ = "0.1.0"
