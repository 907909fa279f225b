"""cxrsynth: a reproducible pipeline from a chest x-ray archive to a labelled synthetic one."""

__version__ = "0.1.0"
