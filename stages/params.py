"""Stage ``params``: validate every section of params.yaml before any other stage runs.

DVC deletes a stage's outputs before running its command, so a stage that found a bad value
only once started would already have lost its previous outputs. This stage runs first (every
stage depends on one of its files), checks all sections, and only when all pass writes each
one, normalised, to ``<out>/<section>.json``. Its outputs are ``persist``: a failed check
leaves them, and everything downstream, as they were.
"""

import argparse
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import read_params, write_validated
from cxrsynth.config.sections import validate_all


def run(args: argparse.Namespace) -> None:
    sections = validate_all(read_params(args.params), str(args.params))
    write_validated(args.out, sections)
    print(f"params: {len(sections)} sections valid")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="folder for one validated JSON file per section")
    stage_main(run, parser)
