"""The archive build's forecast from its pilot pass, and its stop rule, on made-up pilot counts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from cxrsynth.labels import LABELS
from cxrsynth.synthesis.archive_writer import plan_patients
from cxrsynth.synthesis.forecast import (
    CONFIDENCE,
    Forecast,
    Pilot,
    PlanError,
    check_forecast,
    expected_kept,
    forecast_build,
    pooled_kept,
)

C = len(LABELS)


def pilot(patients: int, converged: int | np.ndarray, runs: float = 1.0, steps: float = 10.0,
          seconds: float = 10.0) -> Pilot:
    """``patients`` pilot patients per class, ``converged`` of them converged, ``runs`` and ``steps`` each."""
    n = np.full(C, patients)
    return Pilot(n, np.broadcast_to(converged, (C,)).astype(np.int64), n * runs, n * steps, seconds)


def demo_forecast(measured: Pilot, oversample: float = 2.0, size: int = 4000) -> Forecast:
    """The demo's plan after its pilot (210 images): 80% of the rest in the main pass, spread over the classes."""
    made = 210
    quotas = np.full(C, (size - made) * 4 // 5 // C)
    patient_class, counts = plan_patients(np.ceil(quotas * oversample).astype(np.int64), (3, 6),
                                          np.random.default_rng(0))
    return forecast_build(measured, made, size, quotas, patient_class, counts, size - made - int(quotas.sum()),
                          oversample, (3, 6))


def test_upper_bounds_are_clopper_pearsons():
    measured = pilot(6, np.array([0, 3, 6] + [6] * (C - 3)))
    upper = measured.upper_bounds()
    assert upper[0] == pytest.approx(1 - (1 - CONFIDENCE) ** (1 / 6))  # 0 of n: solves (1 - p)^n = 1 - confidence
    assert binom.cdf(3, 6, upper[1]) == pytest.approx(1 - CONFIDENCE)
    assert upper[2] == 1.0 and (upper >= measured.rates()).all()


def test_expected_images_kept_match_the_binomial():
    """40 candidates of 4 images each converge with probability p; a class keeps at most its quota."""
    k = np.arange(41)
    for p, quota in [(0.5, 80), (0.5, 60), (0.9, 140), (0.3, 160)]:
        exact = (binom.pmf(k, 40, p) * np.minimum(quota, 4 * k)).sum()
        got = expected_kept(np.array([quota]), np.array([160.0]), np.array([40 * 16.0]), np.array([p]))[0]
        assert got == pytest.approx(exact, rel=0.01), (p, quota)


def test_a_pass_keeps_what_the_pool_of_every_class_delivers():
    """Two classes of 20 candidates of 4 images, converging at 0.9 and 0.2; the pass plans 100 images. Filled
    class by class (50 each) the second would leave about 34 short; from the pool the pass loses far less,
    and the expectation matches a simulation of the two binomials."""
    rng = np.random.default_rng(0)
    rates, images, sq = np.array([0.9, 0.2]), np.array([80.0, 80.0]), np.array([20 * 16.0, 20 * 16.0])
    simulated = np.minimum(100, 4 * rng.binomial(20, rates, size=(200_000, 2)).sum(axis=1)).mean()
    assert pooled_kept(100, images, sq, rates) == pytest.approx(simulated, rel=0.01)
    per_class = expected_kept(np.array([50.0, 50.0]), images, sq, rates).sum()
    assert pooled_kept(100, images, sq, rates) > per_class + 20


def test_time_and_latents_scale_the_pilot_by_the_plan():
    """1.5 runs and 12 latent-steps per pilot patient, 180 latent-steps in 9 s: the forecast takes the plan's
    patients at those rates, whatever the clock of the machine running the test."""
    measured = pilot(1, 1, runs=1.5, steps=12.0, seconds=9.0)
    forecast = demo_forecast(measured)
    assert forecast.delivered_fraction == pytest.approx(1.0)
    assert forecast.latents == pytest.approx(1.5 * forecast.patients)
    assert forecast.seconds == pytest.approx(forecast.patients * 12 * 9.0 / 180)
    assert forecast.minutes == pytest.approx((9.0 + forecast.seconds) / 60)
    check_forecast(forecast, 0.01, forecast.minutes + 0.1, 2.0, "labeller")
    with pytest.raises(PlanError, match="exceeds archive.max_minutes"):
        check_forecast(forecast, 0.01, forecast.minutes - 0.1, 2.0, "labeller")


@pytest.mark.parametrize("converged", [1, 2, 3])
def test_a_demo_sized_pilot_never_stops_the_build_by_bad_luck(converged):
    """With 3 pilot patients per class, a class that converged once may still converge 94% of the time; at
    the demo's oversample (2) that fills the plan, so only the printed expectation warns."""
    forecast = demo_forecast(pilot(3, converged))
    assert forecast.best_delivered_fraction > 0.99
    check_forecast(forecast, 0.01, None, 2.0, "labeller")
    if converged == 1:
        assert forecast.delivered_fraction < 0.99  # the point estimate alone would have stopped it


def test_a_pilot_that_shows_the_plan_out_of_reach_stops_the_build_unless_any_shortfall_is_accepted():
    forecast = demo_forecast(pilot(20, 2), oversample=1.5)  # at most 36% converge
    assert forecast.best_delivered_fraction < 0.8
    with pytest.raises(PlanError) as err:
        check_forecast(forecast, 0.01, None, 1.5, "labeller (densenet) test macro AUROC 0.580")
    message = str(err.value)
    assert "\n" not in message and "AUROC 0.580" in message and "2 of 20" in message
    assert "archive.oversample (now 1.5; at least 2.8 needed)" in message and "archive.max_shortfall" in message
    check_forecast(forecast, 1.0, None, 1.5, "labeller")  # archive.max_shortfall 1.0: any shortfall accepted
