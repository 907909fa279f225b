"""Where offline copies of the real NIH metadata live (tests and the demo sample tool)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cxrsynth.errors import MissingInputError


def torchxrayvision_data_dir() -> Path | None:
    """The data folder of an installed ``torchxrayvision`` (it ships the v2020 table), or None."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "data"
    return folder if folder.is_dir() else None


def torchxrayvision_table(name: str = "Data_Entry_2017_v2020.csv.gz") -> Path:
    """Path of one metadata file shipped by torchxrayvision; FileNotFoundError if absent."""
    folder = torchxrayvision_data_dir()
    path = folder / name if folder else None
    if path is None or not path.exists():
        raise MissingInputError(f'{name}: not found (pip install "cxrsynth[nih]": torchxrayvision ships it)')
    return path
