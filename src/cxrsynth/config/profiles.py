"""Params profiles: ``params/base.yaml`` (the demo) plus one override file per profile, composed by Hydra.

DVC composes the same files on every ``dvc exp run`` (``.dvc/config``: ``hydra.enabled``,
``config_dir: params``, ``config_name: base``) and writes the result to ``params.yaml``, so
``dvc exp run -S profile=nih`` switches to the paper's full scale and ``-S gan.lr=...`` still
works on top of it. This module composes them the same way for anyone running ``dvc repro``
(``python -m cxrsynth.config.profiles profile=nih``) and for the tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

PARAMS_DIR = "params"
BASE = "base"
PROFILES_DIR = "profile"


def profile_names(root: str | Path = ".") -> list[str]:
    """The profiles a user can choose (``params/profile/<name>.yaml``)."""
    return sorted(p.stem for p in (Path(root) / PARAMS_DIR / PROFILES_DIR).glob("*.yaml"))


def compose(overrides: list[str] | tuple[str, ...] = (), root: str | Path = ".") -> dict[str, Any]:
    """The params ``dvc exp run -S <overrides>`` would write, as plain Python values."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str((Path(root) / PARAMS_DIR).resolve()), version_base=None):
        cfg = hydra_compose(config_name=BASE, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def write_params(overrides: list[str] | tuple[str, ...] = (), root: str | Path = ".",
                 out: str | Path | None = None) -> Path:
    """Compose and write ``params.yaml`` exactly as DVC's ``dvc exp run`` does (its own function)."""
    from dvc.utils.hydra import compose_and_dump

    root = Path(root).resolve()
    out = Path(out) if out is not None else root / "params.yaml"
    compose_and_dump(out, str(root / PARAMS_DIR), None, BASE, str(root), list(overrides))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write params.yaml from params/ for a plain `dvc repro` (dvc exp run does this itself). "
                    "Example: python -m cxrsynth.config.profiles profile=nih gan.devices=4")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as dvc exp run -S takes them")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if params.yaml differs from the composition")
    args = parser.parse_args(argv)
    target = Path("params.yaml")
    if args.check:
        composed = write_params(args.overrides, out=Path(".params.check.yaml"))
        try:
            same = target.exists() and composed.read_text() == target.read_text()
        finally:
            composed.unlink()
        print("params.yaml is " + ("the composition" if same else "NOT the composition: dvc exp run would rewrite it"))
        return 0 if same else 1
    write_params(args.overrides, out=target)
    print(f"wrote params.yaml ({' '.join(args.overrides) or 'profile=demo'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
