"""Calibration from labelled examples: temperature, isotonic, and the cross-validated choice."""

from __future__ import annotations

import random

import pytest

from claims import calibration
from claims.errors import CalibrationError
from claims.metrics import expected_calibration_error

LABELS = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")


def overconfident(n: int, seed: int = 1) -> list[tuple[dict[str, float], str]]:
    """Scores that always claim 0.95 for a label that is right 60% of the time."""
    rng = random.Random(seed)
    samples = []
    for _ in range(n):
        predicted = rng.choice(LABELS)
        truth = (
            predicted if rng.random() < 0.6 else rng.choice([x for x in LABELS if x != predicted])
        )
        samples.append(({k: 0.95 if k == predicted else 0.025 for k in LABELS}, truth))
    return samples


def test_ece_of_hand_made_examples() -> None:
    assert expected_calibration_error([0.9, 0.9], [True, False]) == pytest.approx(0.4)
    assert expected_calibration_error([], []) is None


@pytest.mark.parametrize("method", ["temperature", "isotonic", "auto"])
def test_calibration_cuts_the_error_of_overconfident_scores(method) -> None:
    fit = calibration.fit(overconfident(400), method)  # type: ignore[arg-type]
    assert fit.fitted_on == 200 and fit.held_out == 200
    assert fit.ece_after is not None and fit.ece_before is not None
    assert fit.ece_after < fit.ece_before / 2
    applied = fit.calibration.apply({"SUPPORTED": 0.95, "REFUTED": 0.025, "NOT_ENOUGH_INFO": 0.025})
    assert sum(applied.values()) == pytest.approx(1.0)
    assert max(applied, key=applied.get) == "SUPPORTED"  # the winner stays the winner


def test_isotonic_is_monotone_and_auto_leaves_calibrated_scores_alone() -> None:
    fitted = calibration.fit_isotonic(overconfident(300))
    ys = fitted.params["y"]
    assert ys == sorted(ys)
    rng = random.Random(3)
    honest = []
    for _ in range(600):
        confidence = rng.uniform(0.4, 1.0)
        right = rng.random() < confidence
        label = "SUPPORTED" if right else "REFUTED"
        rest = (1 - confidence) / 2
        honest.append(({"SUPPORTED": confidence, "REFUTED": rest, "NOT_ENOUGH_INFO": rest}, label))
    kept = calibration.fit(honest)  # auto: whatever it picks must not make things worse
    assert kept.ece_after is not None and kept.ece_before is not None
    assert kept.ece_after <= kept.ece_before + 0.01
    with pytest.raises(CalibrationError, match="at least 10"):
        calibration.fit(honest[:5])
