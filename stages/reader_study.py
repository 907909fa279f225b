"""Stage ``reader_study``: the reader study's statistics beside the paper's (section 4.4).

Human answers are read from ``reader_answers/<answers>`` when that database exists (readers who
submitted only). Simulated readers (the trained discriminator, ``reader_study.simulated_readers``)
answer the same study through the app's HTTP API on a local port; their results are kept apart and
marked simulated in the JSON, the answers table and the figure.
"""

import argparse
import json
import tempfile
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_section
from cxrsynth.config.reader_study import ReaderStudyParams
from cxrsynth.errors import InputError
from cxrsynth.io import atomic_path, write_json
from cxrsynth.reader_study import paper
from cxrsynth.reader_study.analysis import answers_table, complete_readers, report
from cxrsynth.reader_study.answers import AnswersDB, read_answers
from cxrsynth.reader_study.app import create_app
from cxrsynth.reader_study.design import SUMMARY_FILE, Design
from cxrsynth.reader_study.figures import reader_study_figure
from cxrsynth.reader_study.simulated import (
    discriminator_scorer,
    run_readers,
    running_server,
)


def simulated_answers(study: Path, gan: Path, params: ReaderStudyParams) -> list[tuple]:
    """Answers of ``params.simulated_readers`` given through the app, from a throw-away database."""
    with tempfile.TemporaryDirectory(prefix="reader-study-") as work:
        answers = Path(work) / "simulated.sqlite"
        db = AnswersDB(answers, Design(study).study_id)
        tokens = [(db.add_reader(kind="simulated"), grade) for grade in params.simulated_readers]
        scorer, side = discriminator_scorer(gan)
        with running_server(create_app(study, answers)) as url:
            run_readers(url, tokens, scorer, side, params.simulated_noise, params.seed)
        return read_answers(answers)[1]


def human_answers(path: Path, study_id: str) -> list[tuple]:
    """Submitted human answers in ``path``; none when it does not exist."""
    if not path.exists():
        return []
    answered, rows = read_answers(path)
    if answered != study_id:
        raise InputError(f"{path}: answers to study {answered}, but the design is now study {study_id} "
                         "(the films changed upstream); move the file away or set reader_study.answers")
    return [row for row in rows if row[1] == "human"]


def run(args: argparse.Namespace) -> None:
    params = load_section(ReaderStudyParams, args.params)
    design = Design(args.study)
    rows = human_answers(args.answers_dir / params.answers, design.study_id)
    if params.simulated_readers:
        rows += simulated_answers(args.study, args.gan, params)
    table = complete_readers(answers_table(args.study, rows), len(design.screens))
    populations = {kind: report(table[table["kind"] == kind], params.level, params.n_bootstrap, params.seed)
                   for kind in ("human", "simulated")}
    design_summary = json.loads((args.study / SUMMARY_FILE).read_text())
    metrics = {
        "simulated": populations["human"]["readers"] == 0,
        "note": "simulated readers are the trained discriminator answering through the app, not radiologists; "
                "on the embedded demo the films are 32 px phantoms, not clinical images",
        "design": design_summary,
        "human": populations["human"],
        "simulated_readers": populations["simulated"],
        "paper": {"design": paper.DESIGN, "results": paper.RESULTS, "note": paper.NOTE},
    }
    write_json(args.metrics, metrics)
    with atomic_path(args.answers_csv) as tmp:
        table.assign(kind=table["kind"].where(table["kind"] != "simulated", "SIMULATED")).to_csv(tmp, index=False)
    reader_study_figure(paper.RESULTS, {"human": populations["human"], "simulated": populations["simulated"]},
                        args.figure)
    for kind, population in populations.items():
        if population["readers"]:
            pooled = population["pooled"]
            print(f"reader_study ({kind}, {population['readers']} readers): " + ", ".join(
                f"{q} {v['rate']:.0%}" for q, v in pooled.items() if v))
    if not rows:
        print("reader_study: no answers (no human database and no simulated readers)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--study", type=Path, required=True, help="the reader_design stage's folder")
    parser.add_argument("--answers-dir", type=Path, required=True,
                        help="folder of the human answers database (reader_study.answers names the file)")
    parser.add_argument("--gan", type=Path, required=True, help="exported GAN (the simulated readers' discriminator)")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--answers-csv", type=Path, required=True, help="every analysed answer with its truth")
    parser.add_argument("--figure", type=Path, required=True)
    stage_main(run, parser)
