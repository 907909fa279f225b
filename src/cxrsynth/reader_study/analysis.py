"""The paper's statistics of a reader study, per reader, per grade and pooled.

For grid films: the share of real films called real and of generated films called real, each with a
95% Wilson interval and a one-sided one-sample t-test against 50% over the answers, as the paper
did (and over readers' rates, readers being the independent units, when there are two or more);
HYPE-infinity (Zhou et al. 2019): the share of grid films called wrongly, with a bootstrap interval
over readers. For pairs: the share of pairs whose real film was chosen, with the same interval and test.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from cxrsynth.reader_study.design import DESIGN_FILE

QUANTITIES = ("real_called_real", "generated_called_real", "hype_inf", "pair_accuracy")


def answers_table(study: str | Path, rows: list[tuple]) -> pd.DataFrame:
    """One row per answer with its truth: reader, kind, grade, screen, position, screen_kind, image_id,
    real (the truth), called_real. ``rows`` as ``answers.read_answers`` gives them."""
    db = sqlite3.connect(f"file:{Path(study) / DESIGN_FILE}?mode=ro", uri=True)
    try:
        design = pd.read_sql_query("SELECT s.screen, s.position, s.kind AS screen_kind, s.image_id, "
                                   "i.truth = 'real' AS real FROM screens s JOIN images i ON i.id = s.image_id", db)
    finally:
        db.close()
    answers = pd.DataFrame(rows, columns=["reader", "kind", "grade", "screen", "position", "called_real"])
    table = answers.merge(design, on=["screen", "position"], how="inner", validate="many_to_one")
    table["real"] = table["real"].astype(bool)
    table["called_real"] = table["called_real"].astype(bool)
    return table.sort_values(["reader", "screen", "position"]).reset_index(drop=True)


def complete_readers(table: pd.DataFrame, screens: int) -> pd.DataFrame:
    """Only the answers of readers who answered every film of every screen."""
    per_reader = table.groupby("reader")["screen"].nunique()
    return table[table["reader"].isin(per_reader.index[per_reader == screens])]


def _one_sided_p(values: np.ndarray) -> float | None:
    """P-value of a one-sample t-test of mean > 0.5 (None with fewer than two values)."""
    if len(values) < 2:
        return None
    if np.ptp(values) == 0:  # no spread: the t statistic is infinite (or undefined at exactly 0.5)
        return 0.0 if values[0] > 0.5 else 1.0
    return float(stats.ttest_1samp(values, 0.5, alternative="greater").pvalue)


def proportion(hits: np.ndarray, readers: np.ndarray, level: float) -> dict | None:
    """Rate, Wilson interval and one-sided t-tests (over answers; over readers' rates) of boolean ``hits``."""
    if len(hits) == 0:
        return None
    k, n = int(hits.sum()), len(hits)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    rates = pd.Series(hits).groupby(readers).mean().to_numpy()
    return {"rate": round(k / n, 4), "ci": [round(ci.low, 4), round(ci.high, 4)], "n": n,
            "p_answers": _rounded(_one_sided_p(hits.astype(float))),
            "p_readers": _rounded(_one_sided_p(rates)), "readers": len(rates)}


def hype_infinity(wrong: np.ndarray, readers: np.ndarray, level: float, n_bootstrap: int, seed: int) -> dict | None:
    """HYPE-infinity: share of grid films called wrongly, bootstrap interval over readers (over answers
    when there is one reader)."""
    if len(wrong) == 0:
        return None
    rng = np.random.default_rng(seed)
    ids = np.unique(readers)
    if len(ids) > 1:
        sums = pd.Series(wrong).groupby(readers).agg(["sum", "count"]).to_numpy(dtype=float)
        picks = rng.integers(0, len(ids), size=(n_bootstrap, len(ids)))
        boot = sums[picks, 0].sum(axis=1) / sums[picks, 1].sum(axis=1)
    else:
        boot = wrong[rng.integers(0, len(wrong), size=(n_bootstrap, len(wrong)))].mean(axis=1)
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return {"rate": round(float(wrong.mean()), 4), "ci": [round(float(low), 4), round(float(high), 4)],
            "n": len(wrong), "readers": len(ids)}


def summarise(table: pd.DataFrame, level: float = 0.95, n_bootstrap: int = 10000, seed: int = 0) -> dict:
    """The four quantities of paper 001 section 4.4 for the answers in ``table``."""
    grid = table[table["screen_kind"] == "grid"]
    real, generated = grid[grid["real"]], grid[~grid["real"]]
    pairs = table[(table["screen_kind"] == "pair") & table["real"]]  # the real film of each pair: chosen or not
    return {
        "real_called_real": proportion(real["called_real"].to_numpy(), real["reader"].to_numpy(), level),
        "generated_called_real": proportion(generated["called_real"].to_numpy(), generated["reader"].to_numpy(), level),
        "hype_inf": hype_infinity((grid["called_real"] != grid["real"]).to_numpy(), grid["reader"].to_numpy(),
                                  level, n_bootstrap, seed),
        "pair_accuracy": proportion(pairs["called_real"].to_numpy(), pairs["reader"].to_numpy(), level),
    }


def report(table: pd.DataFrame, level: float = 0.95, n_bootstrap: int = 10000, seed: int = 0) -> dict:
    """Pooled, by grade and per reader summaries of one population of readers (human or simulated)."""
    if table.empty:
        return {"readers": 0}
    grades = table.groupby("reader")["grade"].first()
    return {
        "readers": int(table["reader"].nunique()),
        "readers_by_grade": {g: int(n) for g, n in grades.value_counts().sort_index().items()},
        "pooled": summarise(table, level, n_bootstrap, seed),
        "by_grade": {g: summarise(part, level, n_bootstrap, seed) for g, part in table.groupby("grade")},
        "per_reader": {str(r): {"grade": grades[r], **summarise(part, level, n_bootstrap, seed)}
                       for r, part in table.groupby("reader")},
    }


def _rounded(p: float | None) -> float | None:
    return None if p is None else float(f"{p:.4g}")
