"""The archive's figures (synthesis.figures): the prevalence table and bars, Figures 7 and 8, and
real films beside generated ones, each holding what it was given, the same bytes every time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from cxrsynth.labels import LABELS
from cxrsynth.synthesis.archive_builder import ArchiveBuild
from cxrsynth.synthesis.figures import (
    archive_figures,
    class_rows,
    follow_up_rows,
    one_per_patient,
    prevalence_table,
    real_beside_generated,
    real_vs_generated,
    write_prevalence,
)


def archive_table(classes: list[str], counts: list[int]) -> pd.DataFrame:
    """An archive table of patients 90000000.. in order, each with ``counts[p]`` films of target ``classes[p]``."""
    ids = np.repeat(90_000_000 + np.arange(len(counts)), counts)
    return pd.DataFrame({"Patient ID": ids, "Target Label": np.repeat(classes, counts)})


def test_real_vs_generated_figure_holds_the_films_it_was_given(tmp_path):
    rng = np.random.default_rng(0)
    real, generated = rng.integers(0, 256, (16, 8, 8), dtype=np.uint8), rng.integers(0, 256, (16, 8, 8), dtype=np.uint8)
    real_vs_generated(real, generated, tmp_path / "a.png", columns=8, tile=32)
    real_vs_generated(real, generated, tmp_path / "b.png", columns=8, tile=32)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    sheet = np.asarray(Image.open(tmp_path / "a.png"))
    assert sheet.shape[1] == 8 * 32 + 7 * 4
    half = sheet.shape[0] // 2
    top, bottom = sheet[:half], sheet[half:]
    # each block: a heading, then two rows of 8 films at 4x (nearest neighbour); the last film of each block
    heading = top.shape[0] - 2 * (32 + 4)
    assert np.array_equal(top[heading + 36 : heading + 68 : 4, -32::4], real[15])
    assert np.array_equal(bottom[heading + 36 : heading + 68 : 4, -32::4], generated[15])
    assert (top[:heading] < 128).any() and (bottom[:heading] < 128).any()  # the labels are drawn


def test_one_per_patient_picks_distinct_patients_reproducibly():
    patients = np.repeat(np.arange(40), 3)
    picked = one_per_patient(patients, 16, seed=0)
    assert len(picked) == 16 and len(set(patients[picked])) == 16 and (np.diff(picked) > 0).all()
    assert np.array_equal(picked, one_per_patient(patients, 16, seed=0))
    assert not np.array_equal(picked, one_per_patient(patients, 16, seed=1))
    assert len(one_per_patient(patients[:6], 16, seed=0)) == 2


class FakeStore:
    """The two things ``real_beside_generated`` asks of a store: its table and films by row (value = row)."""

    def __init__(self, patients: np.ndarray):
        rows = np.arange(len(patients))[::-1]  # table order is not row order
        self.table = pd.DataFrame({"row": rows, "patient_id": np.asarray(patients)[rows]})
        self.reads = []

    def read(self, res: int, rows: np.ndarray) -> np.ndarray:
        self.reads.append((res, np.asarray(rows).tolist()))
        return np.asarray(rows, dtype=np.uint8)[:, None, None] * np.ones((1, res, res), np.uint8)


def test_real_beside_generated_shows_one_film_of_distinct_patients_each_side():
    store = FakeStore(np.repeat(np.arange(30), 2))  # row r belongs to patient r // 2
    test_rows = np.arange(10, 60)
    table = archive_table(["Mass"] * 20, [3] * 20)
    images = np.arange(60, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    real, generated = real_beside_generated(store, test_rows, table, images, 4, seed=0, n=6)
    assert real.shape == (6, 4, 4) and generated.shape == (6, 4, 4)
    shown = real[:, 0, 0]
    assert len(set(shown // 2)) == 6 and set(shown) <= set(test_rows) and store.reads[0][0] == 4
    assert len(set(table["Patient ID"].to_numpy()[generated[:, 0, 0]])) == 6
    assert (generated[:, 0, 0] % 3 == 0).all()  # each patient's first film
    again, _ = real_beside_generated(store, test_rows, table, images, 4, seed=0, n=6)
    assert np.array_equal(again, real)


def test_prevalence_is_written_long_in_label_order_with_its_bars(tmp_path):
    labels = {name: {"source_pct": float(i), "archive_pct": float(i) + 0.5} for i, name in enumerate(LABELS)}
    wide = prevalence_table(labels)
    assert list(wide.index) == list(LABELS) and list(wide.columns) == ["source", "archive"]
    write_prevalence(labels, tmp_path / "p.csv", tmp_path / "p.png", "calibrated")
    long = pd.read_csv(tmp_path / "p.csv")
    assert list(long.columns) == ["label", "set", "prevalence_pct"] and len(long) == 2 * len(LABELS)
    assert long["set"].tolist() == ["source"] * len(LABELS) + ["archive"] * len(LABELS)
    assert long.loc[len(LABELS) + 3, "label"] == LABELS[3] and long.loc[len(LABELS) + 3, "prevalence_pct"] == 3.5
    assert (tmp_path / "p.png").stat().st_size > 0


def test_figure_7_rows_follow_label_order_and_figure_8_the_first_patients():
    table = archive_table(["Nodule", "Mass", "Nodule", "Atelectasis", "Nodule"], [2, 1, 3, 2, 1])
    centres = np.arange(5, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    rows = class_rows(centres, table, n=2)
    assert [name for name, _ in rows] == ["Atelectasis", "Mass", "Nodule"]  # LABELS order, classes present
    assert [stack[:, 0, 0].tolist() for _, stack in rows] == [[3], [1], [0, 2]]  # at most n per class
    images = np.arange(9, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    series = follow_up_rows(table, images, n=3)
    assert [name for name, _ in series] == ["Nodule (2)", "Mass (1)", "Nodule (3)"]
    assert [stack[:, 0, 0].tolist() for _, stack in series] == [[0, 1], [2], [3, 4, 5]]


class Flat(nn.Module):
    """A 'generator' drawing each latent's first value as a flat grey image."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, z, resolution, alpha):
        return (self.scale * z[:, :1, None, None]).expand(len(z), 1, resolution, resolution)


def test_archive_figures_draw_figures_7_and_8_the_same_every_time(tmp_path):
    table = archive_table(["Mass", "Nodule", "Mass"], [2, 3, 1])
    z_star = torch.tensor([[-1.0], [0.0], [1.0]])
    images = np.arange(6, dtype=np.uint8)[:, None, None] * np.full((1, 8, 8), 40, np.uint8)
    build = ArchiveBuild(table, images, None, pd.DataFrame(), z_star, [], 0.0)
    for name in ("a", "b"):
        archive_figures(Flat().eval(), build, 8, "cpu", tmp_path / f"{name}7.png", tmp_path / f"{name}8.png")
    for figure in ("7", "8"):
        assert (tmp_path / f"a{figure}.png").read_bytes() == (tmp_path / f"b{figure}.png").read_bytes()
    seven = np.asarray(Image.open(tmp_path / "a7.png"))
    eight = np.asarray(Image.open(tmp_path / "a8.png"))
    assert seven.shape[0] == 2 * (96 + 2)  # two classes (Mass, Nodule), films enlarged 12x to 96 px
    assert eight.shape[0] == 3 * (96 + 2) and eight.shape[1] == 160 + 3 * (96 + 2)  # three patients, up to 3 films
    assert {0, 255} <= set(np.unique(seven[:, 120:])) and 128 in np.unique(seven[:, 120:])  # G(z*): black, grey, white
