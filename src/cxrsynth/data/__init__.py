"""Data layer: sources (demo, nih, local), metadata repair, image store, patient split."""
