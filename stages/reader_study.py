"""Stage ``reader_study``: the reader study's statistics beside the paper's (section 4.4).

Human answers are read from ``reader_answers/<answers>`` when that database exists (readers who
submitted only). Simulated readers (the trained discriminator, ``reader_study.simulated_readers``)
answer the same study through the app's HTTP API on a local port; their results are kept apart and
marked simulated in the JSON, the answers table and the figure.
"""

import argparse
import json
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.reader_study import ReaderStudyParams
from cxrsynth.io import atomic_path, write_json
from cxrsynth.paper import READER_STUDY_RESULTS
from cxrsynth.reader_study.analysis import answers_table, complete_readers
from cxrsynth.reader_study.answers import human_answers
from cxrsynth.reader_study.design import SUMMARY_FILE, Design
from cxrsynth.reader_study.figures import reader_study_figure
from cxrsynth.reader_study.results import (
    analyse_populations,
    marked_answers,
    simulated_answers,
    study_metrics,
    summary_lines,
)


def run(args: argparse.Namespace) -> None:
    params = load_validated(ReaderStudyParams, args.params / "reader_study.json")
    design = Design(args.study)
    rows = human_answers(args.answers_dir / params.answers, design.study_id)
    if params.simulated_readers:
        rows += simulated_answers(args.study, args.gan, params)
    table = complete_readers(answers_table(args.study, rows), len(design.screens))
    populations = analyse_populations(table, params.level, params.n_bootstrap, params.seed)
    write_json(args.metrics, study_metrics(populations, json.loads((args.study / SUMMARY_FILE).read_text())))
    with atomic_path(args.answers_csv) as tmp:
        marked_answers(table).to_csv(tmp, index=False)
    reader_study_figure(READER_STUDY_RESULTS, populations, args.figure)
    for line in summary_lines(populations):
        print(line)
    if not rows:
        print("reader_study: no answers (no human database and no simulated readers)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--study", type=Path, required=True, help="the reader_design stage's folder")
    parser.add_argument("--answers-dir", type=Path, required=True,
                        help="folder of the human answers database (reader_study.answers names the file)")
    parser.add_argument("--gan", type=Path, required=True, help="exported GAN (the simulated readers' discriminator)")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--answers-csv", type=Path, required=True, help="every analysed answer with its truth")
    parser.add_argument("--figure", type=Path, required=True)
    stage_main(run, parser)
