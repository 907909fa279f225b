"""Print the project modules a stage script imports (transitively): the `src/` part of its deps in dvc.yaml.

    python tools/stage_deps.py archive          # one stage
    python tools/stage_deps.py                  # every stage in stages/

tests/test_dvc_graph.py fails when dvc.yaml and these lists disagree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cxrsynth.provenance import import_closure

ROOT = Path(__file__).resolve().parents[1]


def stage_modules(stage: str) -> list[str]:
    """The module files ``stages/<stage>.py`` imports, as paths relative to the repository root."""
    return [str(p.relative_to(ROOT)) for p in import_closure([ROOT / "stages" / f"{stage}.py"])]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", help="stage names (default: every script in stages/)")
    args = parser.parse_args()
    for stage in args.stages or sorted(p.stem for p in (ROOT / "stages").glob("*.py")):
        print(f"{stage}:")
        for path in stage_modules(stage):
            print(f"      - {path}")
