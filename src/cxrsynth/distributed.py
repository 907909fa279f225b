"""Which process of a distributed (DDP) run this is, however the run was launched.

torchrun sets ``RANK``; SLURM's ``srun`` sets ``SLURM_PROCID``; Lightning's own launcher starts the
other processes later with ``LOCAL_RANK`` (and ``NODE_RANK``) and sets no ``RANK``. Once a process
group is up, its rank is the answer. Kept free of a torch import: every stage script asks.
"""

from __future__ import annotations

import os
import sys


def is_first_process() -> bool:
    """Whether this is global rank 0 (or no distributed run at all): the process that writes."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0  # Lightning leaves the process group up until the process exits
    for var in ("RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var]) == 0
    return int(os.environ.get("NODE_RANK", 0)) == 0 and int(os.environ.get("LOCAL_RANK", 0)) == 0
