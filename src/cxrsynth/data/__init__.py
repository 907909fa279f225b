"""Data layer: sources (demo, nih, local), metadata repair, image store, patient split, and the
synthetic archive's reader: ``from cxrsynth.data.archive_dataset import ArchiveDataset``.

This file holds only this docstring, so importing one module of the package runs nothing else (and
each stage's DVC dependencies stay the modules it really uses).
"""
