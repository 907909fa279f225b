"""The fid stage's results (paper 001, Table 1 and Figure 5): for every extractor, Table 1, the
class-by-class distance matrix and its 2-D map, from the real moments of ``real_features`` and the
generated moments; their plot tables, the metrics of ``fid.json`` and the line the stage prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cxrsynth.errors import MissingInputError
from cxrsynth.metrics.extractors import Extractor
from cxrsynth.metrics.fid_sets import class_matrix, embed_2d, left_out_labels, pixel_change, table1
from cxrsynth.metrics.frechet import MIN_IMAGES, GroupMoments


def read_real_info(real_dir: Path) -> dict:
    """``info.json`` of a real_features folder (resolution, images, extractors, groups)."""
    path = Path(real_dir) / "info.json"
    if not path.exists():
        raise MissingInputError(f"{path}: not found (run the real_features stage)")
    return json.loads(path.read_text())


def check_resolution(real_dir: Path, info: dict, resolution: int) -> None:
    """ValueError when the real features were taken at another side than the generator's ``resolution``."""
    if resolution != info["resolution"]:
        raise ValueError(f"{real_dir}: real features are at {info['resolution']} px but the generator makes "
                         f"{resolution} px images (rerun real_features)")


def with_real_moments(extractors: list[Extractor], real: dict[str, GroupMoments], real_dir: Path,
                      choice: str) -> list[Extractor]:
    """The ``extractors`` that ``real`` has moments for; ValueError naming ``fid.extractor`` (``choice``)
    when none has."""
    kept = [e for e in extractors if e.name in real]
    if not kept:
        raise ValueError(f"{real_dir}: no real moments for fid.extractor={choice!r}")
    return kept


@dataclass
class FIDResults:
    """Table 1, Figure 5's distance matrix and its MDS map per extractor (in the extractors' order), and
    the labels left out of all three for want of images."""

    tables: dict[str, dict[str, float]]  # extractor -> Table 1, distances rounded to 4 places
    matrices: dict[str, pd.DataFrame]  # extractor -> label-by-label Fréchet distances
    maps: dict[str, pd.DataFrame]  # extractor -> 2-D MDS coordinates (label, x, y)
    left_out: dict[str, int]  # label -> its real images, fewer than MIN_IMAGES

    def table1_frame(self) -> pd.DataFrame:
        """Table 1 as a plot table: one row per extractor and split (extractor, split, fid)."""
        rows = [{"extractor": name, "split": split, "fid": value}
                for name, t in self.tables.items() for split, value in t.items()]
        return pd.DataFrame(rows)

    def matrix_frame(self) -> pd.DataFrame:
        """Every extractor's distance matrix in long form (extractor, a, b, fid), distances to 4 places."""
        long = [m.round(4).reset_index(names="a").melt(id_vars="a", var_name="b", value_name="fid").assign(extractor=n)
                for n, m in self.matrices.items()]
        return pd.concat(long)[["extractor", "a", "b", "fid"]]

    def mds_frame(self) -> pd.DataFrame:
        """Every extractor's 2-D map (label, x, y, extractor)."""
        return pd.concat([m.assign(extractor=n) for n, m in self.maps.items()])

    def pixel_change_correlation(self, group_means: np.ndarray) -> tuple[dict[str, float], dict[str, float | None]]:
        """(each finding's pixel change from No Finding, for the findings Table 1 has a row for; per extractor,
        Spearman's rho between those findings' FIDs and pixel changes, None with fewer than three)."""
        change = {k: v for k, v in pixel_change(group_means).items()
                  if k in next(iter(self.tables.values()))}  # the findings Table 1 has a row for
        rho = {n: round(float(spearmanr([t[k] for k in change], list(change.values())).statistic), 4)
               if len(change) > 2 else None for n, t in self.tables.items()}
        return change, rho

    def summary(self) -> str:
        """One line: each extractor's stratified and synthetic distances, and the labels left out."""
        text = ", ".join(f"{n}: stratified {t['stratified']:.3g}, synthetic {t['synthetic']:.3g}"
                         for n, t in self.tables.items())
        if self.left_out:
            text += (f"; left out of Table 1 and Figure 5 (fewer than {MIN_IMAGES} images): "
                     + ", ".join(f"{k} ({n})" for k, n in self.left_out.items()))
        return text


def fid_results(real: dict[str, GroupMoments], generated: dict[str, GroupMoments], seed: int) -> FIDResults:
    """Table 1, the class matrix and its MDS map (seeded by ``seed``) for every extractor of ``generated``,
    in its order, against the same extractor's ``real`` moments."""
    names = list(generated)
    left_out = left_out_labels(real[names[0]])  # the same images behind every extractor
    tables, matrices, maps = {}, {}, {}
    for name in names:
        tables[name] = {k: round(v, 4) for k, v in table1(real[name], generated[name]).items()}
        matrices[name] = class_matrix(real[name])
        maps[name] = embed_2d(matrices[name], seed)
    return FIDResults(tables, matrices, maps, left_out)


def fid_metrics(results: FIDResults, extractors: list[Extractor], choice: str, info: dict, n_generated: int,
                group_means: np.ndarray) -> dict:
    """The content of ``fid.json``: which extractors ran (``choice``: ``fid.extractor``), the image counts,
    Table 1 per extractor, whether the stratified halves are the closest pair, and how Table 1's findings'
    distances follow their pixel change (``group_means``: real_features' mean image per group)."""
    change, rho = results.pixel_change_correlation(group_means)
    tables = results.tables
    return {
        "extractors": [e.name for e in extractors],
        "skipped": sorted({"inception", "classifier"} - {e.name for e in extractors}
                          if choice == "auto" else set()),
        "inception_weights": next((e.weights for e in extractors if e.name == "inception"), "none"),
        "resolution": info["resolution"],
        "n_real": info["images"],
        "n_generated": n_generated,
        "min_images_per_label": MIN_IMAGES,
        "labels_left_out": results.left_out,  # label: real images, fewer than min_images_per_label (not in Table 1, Fig 5, MDS)
        "table1": tables,
        "stratified_is_smallest": {n: bool(t["stratified"] == min(t.values())) for n, t in tables.items()},
        "pixel_change": {k: round(v, 5) for k, v in change.items()},
        "finding_fid_vs_pixel_change_spearman": rho,
    }
