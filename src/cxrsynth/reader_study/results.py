"""The reader_study stage's results: the answers of simulated readers (the trained discriminator
answering the study through the app), each population's statistics, and the metrics that put them
beside the paper's. Human answers come from the answers database (``answers.human_answers``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from cxrsynth.paper import READER_STUDY_DESIGN, READER_STUDY_NOTE, READER_STUDY_RESULTS
from cxrsynth.reader_study.analysis import report
from cxrsynth.reader_study.answers import AnswersDB, read_answers
from cxrsynth.reader_study.app import create_app
from cxrsynth.reader_study.design import Design
from cxrsynth.reader_study.simulated import discriminator_scorer, run_readers, running_server
from cxrsynth.sampling import gan_only

#: the two populations of readers, analysed and reported apart
POPULATIONS = ("human", "simulated")


def simulated_answers(study: str | Path, gan: str | Path, params) -> list[tuple]:
    """Rows of ``answers.read_answers`` given by ``params.simulated_readers`` (one reader per grade listed;
    ``params``: a ``ReaderStudyParams``) through the app on a local port, from a throw-away database.
    No rows for a diffusion generator: it has no discriminator to read with (``sampling.gan_only``)."""
    if gan_only("the simulated readers", gan):
        return []
    with tempfile.TemporaryDirectory(prefix="reader-study-") as work:
        answers = Path(work) / "simulated.sqlite"
        db = AnswersDB(answers, Design(study).study_id)
        tokens = [(db.add_reader(kind="simulated"), grade) for grade in params.simulated_readers]
        scorer, side = discriminator_scorer(gan)
        with running_server(create_app(study, answers)) as url:
            run_readers(url, tokens, scorer, side, params.simulated_noise, params.seed)
        return read_answers(answers)[1]


def analyse_populations(table: pd.DataFrame, level: float, n_bootstrap: int, seed: int) -> dict[str, dict]:
    """``analysis.report`` of each population's answers in ``table`` (``answers_table``'s rows), by kind."""
    return {kind: report(table[table["kind"] == kind], level, n_bootstrap, seed) for kind in POPULATIONS}


def study_metrics(populations: dict[str, dict], design_summary: dict) -> dict:
    """The content of ``reader_study.json``: the design's summary, each population's statistics and the
    paper's design and results; ``simulated`` is true when no human answered."""
    return {
        "simulated": populations["human"]["readers"] == 0,
        "note": "simulated readers are the trained discriminator answering through the app, not radiologists; "
                "on the embedded demo the films are 32 px phantoms, not clinical images",
        "design": design_summary,
        "human": populations["human"],
        "simulated_readers": populations["simulated"],
        "paper": {"design": READER_STUDY_DESIGN, "results": READER_STUDY_RESULTS, "note": READER_STUDY_NOTE},
    }


def marked_answers(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the simulated readers' kind written SIMULATED, so no row passes for a radiologist's."""
    return table.assign(kind=table["kind"].where(table["kind"] != "simulated", "SIMULATED"))


def summary_lines(populations: dict[str, dict]) -> list[str]:
    """One line per population with readers: its pooled rates."""
    lines = []
    for kind, population in populations.items():
        if population["readers"]:
            pooled = population["pooled"]
            lines.append(f"reader_study ({kind}, {population['readers']} readers): " + ", ".join(
                f"{q} {v['rate']:.0%}" for q, v in pooled.items() if v))
    return lines
