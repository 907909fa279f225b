"""Paper 001's numbers (``cxrsynth.paper``): every table entry present, values in range, averages consistent."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from cxrsynth import paper
from cxrsynth.labels import FINDINGS, LABELS

SRC = Path(__file__).resolve().parents[1] / "src" / "cxrsynth"


def test_table1_has_every_split_of_the_paper():
    assert list(paper.TABLE1_FID) == ["stratified", "sex", *FINDINGS, "synthetic"]  # No Finding is the baseline
    assert all(0 < v < 100 for v in paper.TABLE1_FID.values())
    # what the paper's text says of them: halves closest, Edema and Consolidation farthest, synthetic 8.02
    assert min(paper.TABLE1_FID, key=paper.TABLE1_FID.get) == "stratified"
    assert sorted(paper.TABLE1_FID, key=paper.TABLE1_FID.get)[-2:] == ["Consolidation", "Edema"]
    assert paper.TABLE1_FID["synthetic"] == 8.02


def test_table2_has_every_label_and_consistent_averages():
    assert set(paper.TABLE2_AUROC) == set(LABELS) and len(paper.TABLE2_AUROC) == 15
    values = np.asarray(list(paper.TABLE2_AUROC.values()))
    assert values.shape == (15, len(paper.TABLE2_COLUMNS)) and ((values > 0.5) & (values < 1)).all()
    assert (np.diff(values, axis=1) > 0).all()  # embedded < class generated < real, on every label
    np.testing.assert_allclose(values.mean(axis=0), paper.TABLE2_AVERAGE, atol=0.0005)
    assert paper.TABLE2_COLUMNS == ("embedded", "class_generated", "real")


def test_reader_study_numbers():
    design, results = paper.READER_STUDY_DESIGN, paper.READER_STUDY_RESULTS
    assert sum(design["readers"].values()) == 8 and design["grids"] * design["grid_size"] == 36
    assert list(results) == ["real_called_real", "generated_called_real", "hype_inf", "pair_accuracy"]
    for quantity in results.values():
        low, high = quantity["ci"]
        assert 0 < low < quantity["rate"] < high < 1
    real, generated = results["real_called_real"]["rate"], results["generated_called_real"]["rate"]
    assert f"{(1 - real + generated) / 2:.2f}" in paper.READER_STUDY_NOTE  # the note's arithmetic holds


def test_the_paper_numbers_are_written_once():
    """No other module spells out a Table 1 or Table 2 entry, or imports the modules this one replaced."""
    for path in SRC.rglob("*.py"):
        if path.name == "paper.py" and path.parent == SRC:
            continue
        text = path.read_text()
        tree = ast.parse(text)
        floats = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and type(node.value) is float}
        assert not {59.40, 42.45, 0.646, 0.851, 0.923} & floats, path
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("cxrsynth.reference", "cxrsynth.reader_study.paper"), path
                assert not (node.module == "cxrsynth.reader_study" and any(a.name == "paper" for a in node.names)), path
