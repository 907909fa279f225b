"""Read access to a run's ``metrics/`` folder that remembers every file the report used."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cxrsynth.errors import MissingInputError


@dataclass
class Metrics:
    """Files of ``folder`` by name relative to it; ``used`` lists what was read, so a test can check
    that no output of the pipeline is left out of the report."""

    folder: Path
    used: set[str] = field(default_factory=set)

    def path(self, name: str, required: bool = True) -> Path | None:
        path = self.folder / name
        if not path.exists():
            if required:
                raise MissingInputError(f"{path}: missing (run the stage that writes it: dvc repro)")
            return None
        self.used.add(name)
        return path

    def json(self, name: str, required: bool = True) -> dict | None:
        path = self.path(name, required)
        return None if path is None else json.loads(path.read_text())

    def csv(self, name: str, required: bool = True) -> pd.DataFrame | None:
        path = self.path(name, required)
        return None if path is None else pd.read_csv(path)

    def text(self, name: str, required: bool = True) -> str | None:
        path = self.path(name, required)
        return None if path is None else path.read_text()

    def png(self, name: str, required: bool = True) -> bytes | None:
        path = self.path(name, required)
        return None if path is None else path.read_bytes()

    def tsv(self, name: str) -> pd.DataFrame:
        """A DVCLive series (``step`` and one value column)."""
        return pd.read_csv(self.path(name), sep="\t")
