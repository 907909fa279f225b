"""cxrsynth: a reproducible pipeline from a chest x-ray archive to a labelled synthetic one.

The version is the package metadata's (``importlib.metadata.version("cxrsynth")``); this file holds
no code, so editing it reruns no stage.
"""
