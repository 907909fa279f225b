"""Inputs from outside the pipeline (pretrained weights, CheXNeXt labels, reader answers), kept as
DVC-tracked files so every copy DVC makes of the workspace has them.

``manifest`` lists them with their URLs and checksums; ``fetch`` downloads and verifies one;
``track`` takes a file placed by hand; both ``dvc add`` it, so a ``.dvc`` pointer is committed to
git and ``dvc exp run --temp`` / ``--queue`` check the file out of the cache. Command line:
``python -m cxrsynth.inputs fetch | track | status`` (docs/inputs.md).
"""
