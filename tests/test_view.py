"""View Position of generated films (synthesis.view): learnt where the view is learnable, chance on a
shuffled control, and the one-view fallback that never fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrsynth.errors import InputError
from cxrsynth.synthesis.view import Films, assign_views, evaluate_view_model, fit_view_model


def films_with_views(n: int, seed: int, shift: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) features where PA films sit ``shift`` higher on the first three, and their views."""
    rng = np.random.default_rng(seed)
    views = np.where(rng.random(n) < 0.55, "PA", "AP")
    features = rng.normal(size=(n, 12))
    features[:, :3] += shift * (views == "PA")[:, None]
    return features, views


class PixelExtractor:
    """Stands in for the labeller's extractor: a film's features are its pixels / 255."""

    dim = 16

    def __init__(self):
        self.calls = 0

    def features(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return images.flatten(1).float() / 255


def films(n: int, seed: int, views=None) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4, 4) uint8 films; PA ones are brighter in the top half. Views drawn unless given."""
    rng = np.random.default_rng(seed)
    views = np.where(rng.random(n) < 0.5, "PA", "AP") if views is None else np.asarray(views, dtype=object)
    images = rng.integers(60, 120, size=(n, 4, 4)).astype(np.uint8)
    images[views == "PA", :2] += 80
    return images, views


def test_view_is_learnt_where_learnable_and_chance_on_a_shuffled_control():
    train, train_views = films_with_views(600, 0)
    test, test_views = films_with_views(400, 1)
    learnt = evaluate_view_model(fit_view_model(train, train_views, seed=0), test, test_views)
    shuffled = np.random.default_rng(2).permutation(train_views)
    control = evaluate_view_model(fit_view_model(train, shuffled, seed=0), test, test_views)
    assert learnt["films"] == 400 and learnt["accuracy"] > 0.85 and learnt["auroc"] > 0.93
    assert control["accuracy"] < 0.65 and control["auroc"] < 0.65
    assert learnt["pa_share_true"] == pytest.approx((test_views == "PA").mean(), abs=1e-4)
    assert abs(learnt["pa_share_predicted"] - learnt["pa_share_true"]) < 0.08


def test_films_of_another_or_no_view_are_left_out_of_fit_and_measure():
    train, views = films_with_views(400, 3)
    noisy = views.astype(object)
    noisy[:40] = "LL"  # another view: random labels would be noise if they were used
    noisy[40:60] = None
    model = fit_view_model(train, noisy, seed=0)
    assert model.pipeline[0].n_samples_seen_ == 340  # the scaler (and the regression) saw the PA and AP films only
    measured = evaluate_view_model(model, train, noisy)
    assert measured["films"] == 340
    with pytest.raises(InputError, match="needs PA and AP"):
        fit_view_model(train, np.full(len(train), "PA"))


def test_assign_views_predicts_every_archive_film_and_records_how_well():
    extractor = PixelExtractor()
    train_images, train_views = films(300, 0)
    train_views[:10] = ""  # missing: left out
    test_images, test_views = films(200, 1)
    archive, truth = films(150, 2)
    views, record = assign_views(extractor, Films(torch.from_numpy(train_images).unsqueeze(1), train_views),
                                 Films(test_images, test_views), archive, np.concatenate([train_views, test_views]),
                                 seed=0, batch_size=64)
    assert record["method"] == "predicted" and record["reason"] is None
    assert record["train_films_left_out"] == 10 and sum(record["train_films"].values()) == 290
    assert record["test"]["films"] == 200 and record["test"]["accuracy"] > 0.95 and record["test"]["auroc"] > 0.98
    assert set(views) <= {"PA", "AP"} and (views == truth).mean() > 0.95
    assert record["archive_views"] == {v: int((views == v).sum()) for v in ("AP", "PA")}
    assert record["archive_pa_share"] == pytest.approx((views == "PA").mean(), abs=1e-4)


def test_one_view_in_train_gives_the_shared_view_or_a_blank_never_a_failure():
    extractor = PixelExtractor()
    images, _ = films(50, 0)
    archive, _ = films(20, 1)
    pa = np.full(50, "PA", dtype=object)
    views, record = assign_views(extractor, Films(images, pa), Films(images[:10], pa[:10]), archive, pa)
    assert record["method"] == "single view" and (views == "PA").all() and record["archive_pa_share"] == 1.0
    assert "50 PA" in record["reason"] and "every real film is PA" in record["reason"]
    assert record["test"] is None and extractor.calls == 0  # no model, no features

    lateral = np.full(50, "LL", dtype=object)  # a source of one other view keeps it
    views, record = assign_views(extractor, Films(images, lateral), Films(images[:10], lateral[:10]), archive, lateral)
    assert record["method"] == "single view" and (views == "LL").all() and record["archive_views"] == {"LL": 20}

    mixed = np.concatenate([pa, ["AP", None]])  # train all PA, but the real films do not share one view
    views, record = assign_views(extractor, Films(images, pa), Films(images[:10], pa[:10]), archive, mixed)
    assert record["method"] == "blank" and (views == "").all() and record["archive_pa_share"] is None
    assert "AP 1" in record["reason"] and "missing 1" in record["reason"] and record["archive_views"] == {}
    assert extractor.calls == 0
