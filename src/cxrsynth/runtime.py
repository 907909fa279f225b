"""Small run-time helpers shared by the stages: device choice and CPU threads."""

from __future__ import annotations

import os

import torch

from cxrsynth.errors import ParamsError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ParamsError(f"device: {name!r} is not a device ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParamsError(f"device: {name!r} requested but CUDA is not available")
    return device


def use_all_cores(threads: int = 0) -> None:
    """Set torch's CPU threads: ``threads``, or 0 for every core this process may use, unless
    ``OMP_NUM_THREADS`` says otherwise (a shared machine, e.g. tests run by several pytest workers)."""
    from_env = os.environ.get("OMP_NUM_THREADS", "")
    cores = int(from_env) if from_env.isdigit() and int(from_env) > 0 else len(os.sched_getaffinity(0))
    torch.set_num_threads(threads or cores or 1)
