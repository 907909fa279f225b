"""Shared fixtures: tiny NIH-shaped raw folders made in tmp_path, and the real v2020 table."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrsynth.data.metadata import NIH_HEADER_LINE

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# Never read this machine's torch hub cache: a weights file there must not change what a test sees.
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="cxrsynth-torch-home-")


@pytest.fixture(scope="session")
def real_table():
    """The real v2020 table as shipped by torchxrayvision (112,120 rows)."""
    from cxrsynth.data.metadata import read_data_entry
    from cxrsynth.metadata_source import torchxrayvision_table

    table, report = read_data_entry(torchxrayvision_table())
    return table, report


def write_raw(folder: Path, rows: list[tuple[str, str]], size: int = 32, seed: int = 0) -> Path:
    """A raw NIH-layout folder: one CSV row and one L-mode PNG per (image, labels)."""
    rng = np.random.default_rng(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = [NIH_HEADER_LINE]
    for i, (name, labels) in enumerate(rows):
        pid = int(name[:8])
        lines.append(f"{name},{labels},{i},{pid},{40 + i % 30},{'MF'[i % 2]},{('PA', 'AP')[i % 2]},1024,1024,0.143,0.143")
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(images / name)
    (folder / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    return folder
