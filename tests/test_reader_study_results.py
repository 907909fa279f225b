"""The reader_study stage's results: whose answers it reads, the populations it analyses apart, and
what it writes (metrics beside the paper's, simulated readers marked)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrsynth import paper
from cxrsynth.errors import InputError
from cxrsynth.reader_study.analysis import report
from cxrsynth.reader_study.answers import AnswersDB, human_answers
from cxrsynth.reader_study.results import (
    analyse_populations,
    marked_answers,
    study_metrics,
    summary_lines,
)


def _finished_reader(db: AnswersDB, kind: str, grade: str, calls: dict[int, bool]) -> None:
    token = db.add_reader(grade, kind=kind)
    reader = db.reader(token)
    db.answer(reader, 0, calls)
    db.close_screen(reader, 0, len(calls), pair=False)
    db.submit(reader, 1)


def test_human_answers_are_the_submitted_human_readers_of_this_study(tmp_path):
    path = tmp_path / "answers.sqlite"
    assert human_answers(path, "study-1") == []  # no database yet: no answers
    db = AnswersDB(path, "study-1")
    _finished_reader(db, "human", "consultant", {0: True, 1: False})
    _finished_reader(db, "simulated", "registrar", {0: False, 1: False})
    db.add_reader("registrar")  # never submits
    rows = human_answers(path, "study-1")
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows] == [("human", "consultant", 0, 0, 1),
                                                               ("human", "consultant", 0, 1, 0)]
    with pytest.raises(InputError, match="answers to study study-1, but the design is now study study-2"):
        human_answers(path, "study-2")


def _table(kinds: dict[int, str]) -> pd.DataFrame:
    """Grid answers of readers ``kinds`` (id -> kind): 8 films each, half real."""
    rng = np.random.default_rng(0)
    rows = [{"reader": r, "kind": kind, "grade": "consultant" if r % 2 else "registrar", "screen": p // 4,
             "position": p % 4, "screen_kind": "grid", "image_id": f"{r}-{p}", "real": p % 2 == 0,
             "called_real": bool(rng.random() < 0.6)} for r, kind in kinds.items() for p in range(8)]
    return pd.DataFrame(rows)


def test_populations_are_analysed_apart_and_marked_in_the_answers_table():
    table = _table({1: "human", 2: "human", 3: "simulated"})
    populations = analyse_populations(table, 0.95, 200, 0)
    assert list(populations) == ["human", "simulated"]
    assert populations["human"] == report(table[table["kind"] == "human"], 0.95, 200, 0)
    assert populations["human"]["readers"] == 2 and populations["simulated"]["readers"] == 1
    marked = marked_answers(table)
    assert list(marked["kind"]) == ["human"] * 16 + ["SIMULATED"] * 8 and list(table["kind"])[-1] == "simulated"
    lines = summary_lines(populations)
    assert len(lines) == 2 and lines[0].startswith("reader_study (human, 2 readers): real_called_real ")
    assert summary_lines({"human": {"readers": 0}, "simulated": populations["simulated"]})[0].startswith(
        "reader_study (simulated, 1 readers)")


def test_metrics_say_simulated_when_no_human_answered_and_carry_the_papers_numbers():
    populations = analyse_populations(_table({3: "simulated"}), 0.95, 200, 0)
    metrics = study_metrics(populations, {"study_id": "s"})
    assert list(metrics) == ["simulated", "note", "design", "human", "simulated_readers", "paper"]
    assert metrics["simulated"] is True and metrics["human"] == {"readers": 0} and metrics["design"] == {"study_id": "s"}
    assert metrics["simulated_readers"] is populations["simulated"]
    assert metrics["paper"] == {"design": paper.READER_STUDY_DESIGN, "results": paper.READER_STUDY_RESULTS,
                                "note": paper.READER_STUDY_NOTE}
    with_humans = analyse_populations(_table({1: "human"}), 0.95, 200, 0)
    assert study_metrics(with_humans, {})["simulated"] is False
