"""Stage ``params`` of baselines/dvc.yaml: validate the ``baselines`` section before any system trains.

As the main pipeline's ``params`` stage: a bad value fails here, in one line naming its key, and
the persisted files below (and every system's outputs) stay as they were. One file per system,
so changing one system's params reruns only that system.
"""

import argparse
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_section, write_validated
from cxrsynth.config.baselines import BaselinesParams


def run(args: argparse.Namespace) -> None:
    params = load_section(BaselinesParams, args.params)
    # the table's row order in systems.json; a system removed from params.yaml loses its file
    write_validated(args.out, {"common": params.common, "systems": list(params.systems), **params.systems})
    print(f"baselines params: {len(params.systems)} systems valid")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="folder for common.json, systems.json and one <system>.json each")
    stage_main(run, parser, name="baselines/params")  # records under metrics/*/baselines/
