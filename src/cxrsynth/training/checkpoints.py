"""Read checkpoints without running anything stored in them.

``torch.load(..., weights_only=False)`` unpickles whatever a file holds, and a pickle may call any
function while it loads. GAN checkpoints are a DVC output that can be pulled from a remote, and
``gan.resume_from`` names any file, so every checkpoint of the project is read with
``weights_only=True``: tensors, numbers, strings, None and lists, tuples and dicts of them, nothing
else. What the training code saves is kept to those types (run keys and configurations as plain
dicts, paths as strings), so its own checkpoints always load.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch

from cxrsynth.errors import InputError


class UnsafeCheckpointError(InputError):
    """A checkpoint holds more than tensors and plain values: loading it could run code, so it is refused."""


def _what(err: pickle.UnpicklingError) -> str:
    """What the file asked for, from torch's weights-only error (e.g. ``the global io.open``)."""
    text = str(err)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return f"the global {found.group(1)}"
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text.replace("\n\n", "\n").replace(": \n", ": "))
    detail = found.group(1).strip().rstrip(".") if found else "unknown"
    return f"pickle content beyond tensors and plain values ({detail})"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint at ``path``, read with ``weights_only=True``.

    Raises ``UnsafeCheckpointError`` (one line naming the file and what it asked for) when a torch
    checkpoint (a zip archive, as ``torch.save`` and Lightning write them), or any pickle naming a
    function, holds anything but tensors and plain values. Other failures (a missing, truncated or
    garbled file) propagate as torch raises them: such a file is unreadable, not a threat."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        what = _what(err)
        if what.startswith("the global") or zipfile.is_zipfile(path):
            raise UnsafeCheckpointError(
                f"{path}: refused: loading it would need {what}, and checkpoints here are read with "
                "weights_only=True (tensors and plain values only); delete it, or move it away if you trust it"
            ) from err
        raise
