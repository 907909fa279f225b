"""The View Position of generated films: PA or AP, predicted from the labeller's features.

An unconditional generator does not say whether it drew a PA or an AP film, yet NIH's loaders
select films by view (torchxrayvision's ``NIH_Dataset`` keeps ``views=["PA"]`` by default). So
each archive film's view is predicted: a logistic regression (scikit-learn, standardised
features, fixed seed) on the labeller DenseNet's penultimate features, fitted on the real train
split's PA and AP films (films of another or no view are left out), measured on the real test
split (accuracy, AUROC, PA share), then applied to every archive film.

A source with fewer than two views among its train films gets no model, and never a failure:
every archive film gets the one view all real films share, or a blank when they do not share
one; the record says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from cxrsynth.data.store_splits import StoreDataset
from cxrsynth.errors import InputError
from cxrsynth.metrics.extractors import Extractor

#: The views a model is fitted on and predicts; NIH's frontal films are all one of these.
VIEWS = ("AP", "PA")
MODEL = "logistic regression (scikit-learn, standardised features) on the labeller DenseNet's penultimate features"


@dataclass(frozen=True)
class Films:
    """Real films of one split: uint8 images ((N, 1, r, r) tensor or (N, r, r) array) and their views."""

    images: torch.Tensor | np.ndarray
    views: np.ndarray


@dataclass(frozen=True)
class ViewModel:
    """A fitted PA-versus-AP classifier on film features."""

    pipeline: Pipeline

    def pa_probability(self, features: np.ndarray) -> np.ndarray:
        """P(PA) per film."""
        return self.pipeline.predict_proba(features)[:, list(self.pipeline.classes_).index(True)]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """"PA" or "AP" per film (P(PA) >= 0.5: PA)."""
        return np.where(self.pa_probability(features) >= 0.5, "PA", "AP")


def clean_views(views) -> np.ndarray:
    """Views as stripped strings, a missing view as ""."""
    return pd.Series(np.asarray(views, dtype=object)).fillna("").astype(str).str.strip().to_numpy()


def fit_view_model(features: np.ndarray, views, seed: int = 0) -> ViewModel:
    """Fit P(PA) on the films whose view is PA or AP; the others are left out. Both views must occur."""
    views = clean_views(views)
    keep = np.isin(views, VIEWS)
    if len(set(views[keep])) < 2:
        raise InputError(f"view model: needs PA and AP films, got {dict(zip(*np.unique(views[keep], return_counts=True)))}")
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    pipeline.fit(np.asarray(features, dtype=np.float64)[keep], views[keep] == "PA")
    return ViewModel(pipeline)


def evaluate_view_model(model: ViewModel, features: np.ndarray, views) -> dict:
    """On the PA and AP films among ``views``: films, accuracy, AUROC (None with one view) and the
    true and predicted PA shares (None without a PA or AP film)."""
    views = clean_views(views)
    keep = np.isin(views, VIEWS)
    out = {"films": int(keep.sum()), "accuracy": None, "auroc": None, "pa_share_true": None, "pa_share_predicted": None}
    if not keep.any():
        return out
    truth = views[keep] == "PA"
    probability = model.pa_probability(np.asarray(features, dtype=np.float64)[keep])
    out.update(accuracy=round(float(((probability >= 0.5) == truth).mean()), 4),
               pa_share_true=round(float(truth.mean()), 4),
               pa_share_predicted=round(float((probability >= 0.5).mean()), 4))
    if 0 < truth.sum() < len(truth):
        out["auroc"] = round(float(roc_auc_score(truth, probability)), 4)
    return out


@torch.no_grad()
def film_features(extractor: Extractor, images: torch.Tensor | np.ndarray, batch_size: int = 256,
                  desc: str = "view features") -> np.ndarray:
    """``extractor``'s features (N, dim) of uint8 films ((N, 1, r, r) or (N, r, r)), in batches, no grad."""
    images = torch.as_tensor(np.asarray(images)) if isinstance(images, np.ndarray) else images
    if images.ndim == 3:
        images = images.unsqueeze(1)
    out = [extractor.features(images[i : i + batch_size]).cpu().numpy()
           for i in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", leave=False)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, extractor.dim))


def split_films(real: dict[str, StoreDataset], table: pd.DataFrame,
                names: tuple[str, ...] = ("train", "test")) -> dict[str, Films]:
    """Per split name, its real films (``data.store_splits.split_datasets``) with their views from the
    store table's ``view`` column."""
    view = table.set_index("row")["view"]
    return {name: Films(real[name].all_images(), view.loc[real[name].rows].to_numpy()) for name in names}


def _counts(views: np.ndarray) -> dict[str, int]:
    return {v: int((views == v).sum()) for v in VIEWS}


def assign_views(extractor: Extractor, train: Films, test: Films, archive_images: np.ndarray, real_views,
                 seed: int = 0, batch_size: int = 256) -> tuple[np.ndarray, dict]:
    """The View Position of every archive film and the record of how it was set.

    With PA and AP films in ``train``: the predicted view, the model measured on ``test``. Otherwise
    the one view every real film (``real_views``, the whole source) shares, else "" (blank). The
    record holds the method, the train films per view, the test metrics, the archive's films per view
    (blank ones not counted), its PA share and, without a model, the reason."""
    train_views, test_views, real = clean_views(train.views), clean_views(test.views), clean_views(real_views)
    record = {"method": "", "model": None, "train_films": _counts(train_views),
              "train_films_left_out": int((~np.isin(train_views, VIEWS)).sum()), "test": None,
              "archive_films": len(archive_images), "archive_views": {}, "archive_pa_share": None, "reason": None}
    if all(record["train_films"].values()):
        model = fit_view_model(film_features(extractor, train.images, batch_size, "view features: train"),
                               train_views, seed)
        record["test"] = evaluate_view_model(
            model, film_features(extractor, test.images, batch_size, "view features: test"), test_views)
        features = film_features(extractor, archive_images, batch_size, "view features: archive")
        views = model.predict(features) if len(features) else np.zeros(0, dtype="<U2")
        record.update(method="predicted", model=f"{MODEL} ({extractor.dim}), seed {seed}")
    else:
        shared = sorted(set(real))
        found = ", ".join(f"{n} {v}" for v, n in record["train_films"].items() if n) or "no PA or AP film"
        if len(shared) == 1 and shared[0]:
            views = np.full(len(archive_images), shared[0])
            record.update(method="single view", reason=f"the real train split holds {found}: no second view to "
                          f"learn; every real film is {shared[0]}, so every archive film is too")
        else:
            views = np.full(len(archive_images), "")
            seen = ", ".join(f"{v or 'missing'} {int((real == v).sum())}" for v in shared) or "none"
            record.update(method="blank", reason=f"the real train split holds {found}: no view model can be "
                          f"fitted, and the real films do not share one view ({seen}), so View Position is blank")
    record["archive_views"] = {v: int((views == v).sum()) for v in sorted(set(views)) if v}
    if (views != "").any():
        record["archive_pa_share"] = round(float((views == "PA").mean()), 4)
    return views, record
