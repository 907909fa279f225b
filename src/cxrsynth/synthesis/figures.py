"""The archive's figures: label prevalence, Figures 7 and 8, and real films beside generated ones.

- ``write_prevalence``: the label prevalence of the source (true labels) and of the archive (the
  labeller's labels), as a long CSV and grouped bars.
- ``class_examples`` (Figure 7): the optimised image G(z*) of up to eight archive patients per
  target class. ``follow_up_series`` (Figure 8): the follow-up films of the first eight patients.
- ``real_vs_generated``: real test films (one per patient) above as many archive films.

(Table 2's bars are ``synthesis.synthetic_auroc``'s, so the ``synthetic_auroc`` stage does not depend
on the archive's code.)
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from cxrsynth.data.store import ImageStore
from cxrsynth.io import atomic_path
from cxrsynth.labels import LABELS
from cxrsynth.models.diffusion import ConditionalDiffusion
from cxrsynth.plots import contact_sheet, prevalence_by_split
from cxrsynth.sampling import sample_images
from cxrsynth.synthesis.archive_builder import ArchiveBuild

#: Figures 7 and 8 enlarge films to about this many pixels (nearest neighbour).
SHOWN_PX = 96
#: Patients per class in Figure 7, and patients in Figure 8.
SHOWN_PATIENTS = 8
#: Films per block of the real-vs-generated figure.
SHOWN_FILMS = 16


def prevalence_table(labels: dict[str, dict]) -> pd.DataFrame:
    """Per label (rows, LABELS order): ``source`` and ``archive`` prevalence in percent, from
    ``synthesis.archive_builder.label_counts``' record."""
    return pd.DataFrame({"source": [labels[n]["source_pct"] for n in LABELS],
                         "archive": [labels[n]["archive_pct"] for n in LABELS]}, index=list(LABELS))


def write_prevalence(labels: dict[str, dict], table_path: str | os.PathLike, figure_path: str | os.PathLike,
                     labeller_kind: str) -> None:
    """Write ``prevalence_table`` long (label, set, prevalence_pct) as CSV, and as grouped bars titled
    with the labeller's cut-offs (``archive.label_thresholds``)."""
    wide = prevalence_table(labels)
    with atomic_path(table_path) as tmp:
        long = wide.rename_axis("label").reset_index().melt(id_vars="label", var_name="set", value_name="prevalence_pct")
        long.to_csv(tmp, index=False)
    prevalence_by_split(wide, figure_path, f"Label prevalence: source (true labels) vs archive "
                                           f"({labeller_kind} labeller)")


def class_rows(centres: np.ndarray, table: pd.DataFrame, n: int = SHOWN_PATIENTS) -> list[tuple[str, np.ndarray]]:
    """Figure 7's rows: per target class with a patient (LABELS order), up to ``n`` of ``centres`` (one
    image per patient, in the table's patient order)."""
    classes = np.asarray([LABELS.index(t) for t in table.drop_duplicates("Patient ID")["Target Label"]])
    return [(name, centres[classes == c][:n]) for c, name in enumerate(LABELS) if (classes == c).any()]


def follow_up_rows(table: pd.DataFrame, images: np.ndarray, n: int = SHOWN_PATIENTS) -> list[tuple[str, np.ndarray]]:
    """Figure 8's rows: the first ``n`` patients' films, each row named "<target class> (<films>)"."""
    series = []
    for pid in table["Patient ID"].drop_duplicates().to_numpy()[:n]:
        chosen = (table["Patient ID"] == pid).to_numpy()
        series.append((f"{table.loc[chosen, 'Target Label'].iloc[0]} ({chosen.sum()})", images[chosen]))
    return series


def class_examples(generator: torch.nn.Module, z_star: torch.Tensor, table: pd.DataFrame, resolution: int,
                   device: torch.device | str, path: str | os.PathLike) -> None:
    """Figure 7: each archive patient's optimised image G(z*) (``z_star`` in table order), up to eight
    per class, as a contact sheet."""
    centres = sample_images(generator, z_star.to(device), resolution)[:, 0].numpy()
    contact_sheet(class_rows(centres, table), path, scale=max(1, SHOWN_PX // resolution))


def follow_up_series(table: pd.DataFrame, images: np.ndarray, resolution: int, path: str | os.PathLike) -> None:
    """Figure 8: the follow-up films of the archive's first eight patients, one row each."""
    contact_sheet(follow_up_rows(table, images), path, label_width=160, scale=max(1, SHOWN_PX // resolution))


def archive_figures(generator: torch.nn.Module, build: ArchiveBuild, resolution: int, device: torch.device | str,
                    examples: str | os.PathLike, series: str | os.PathLike) -> None:
    """Figure 7 (``class_examples``) to ``examples`` and Figure 8 (``follow_up_series``) to ``series``.
    A diffusion generator's Figure 7 shows each patient's first film (its film is a function of the
    noise and the labels, not of z* alone)."""
    if isinstance(generator, ConditionalDiffusion):
        _, first = np.unique(build.table["Patient ID"].to_numpy(), return_index=True)
        first = np.sort(first)
        contact_sheet(class_rows(build.images[first], build.table), examples, scale=max(1, SHOWN_PX // resolution))
    else:
        class_examples(generator, build.z_star, build.table, resolution, device, examples)
    follow_up_series(build.table, build.images, resolution, series)


def one_per_patient(patients: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of up to ``n`` films of distinct, randomly chosen patients (the first film of each),
    in ascending order; deterministic for a seed."""
    _, first = np.unique(np.asarray(patients), return_index=True)
    chosen = np.random.default_rng(seed).permutation(np.sort(first))[:n]
    return np.sort(chosen)


def real_beside_generated(store: ImageStore, test_rows: np.ndarray, table: pd.DataFrame, images: np.ndarray,
                          resolution: int, seed: int, n: int = SHOWN_FILMS) -> tuple[np.ndarray, np.ndarray]:
    """The films ``real_vs_generated`` shows: ``n`` real test films (``store`` rows ``test_rows``, read
    at ``resolution``) and ``n`` archive films (``table``, ``images``), one per patient each
    (``one_per_patient``)."""
    test_patients = store.table.set_index("row").loc[test_rows, "patient_id"].to_numpy()
    shown = test_rows[one_per_patient(test_patients, n, seed)]
    made = one_per_patient(table["Patient ID"].to_numpy(), n, seed)
    return store.read(resolution, shown), images[made]


def real_vs_generated(real: np.ndarray, generated: np.ndarray, path: str | os.PathLike, columns: int = 8,
                      tile: int = 128) -> None:
    """A PNG grid: real films (N, r, r) uint8 in the top rows under "real (test split)", as many
    generated films in the bottom rows under "generated (archive)", each film enlarged to about
    ``tile`` pixels (nearest neighbour, so pixels stay honest)."""
    n = min(len(real), len(generated))
    scale = max(1, tile // real.shape[-1])
    side, gap, size = real.shape[-1] * scale, 4, max(16, real.shape[-1] * scale // 6)
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: its bitmap font
        font = ImageFont.load_default()
    heading, rows = size + 12, -(-n // columns)
    block = heading + rows * (side + gap)
    sheet = Image.new("L", (columns * (side + gap) - gap, 2 * block), color=255)
    draw = ImageDraw.Draw(sheet)
    for b, (title, stack) in enumerate((("real (test split)", real[:n]), ("generated (archive)", generated[:n]))):
        top = b * block
        draw.text((0, top + 4), title, fill=0, font=font)
        for i, image in enumerate(stack):
            big = np.repeat(np.repeat(np.ascontiguousarray(image), scale, axis=0), scale, axis=1)
            sheet.paste(Image.fromarray(big), ((i % columns) * (side + gap), top + heading + (i // columns) * (side + gap)))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)

