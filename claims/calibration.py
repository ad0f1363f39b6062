"""Calibrating verdict confidence from labelled examples (trainer reviews).

Two methods, both fitted on one part of the examples and judged by expected
calibration error (ECE) on the part held out (``auto`` picks between them,
and leaving the scores as they are, by two-fold cross-validation inside the
fitting part, so the held-out part stays untouched):

- ``temperature``: one number ``T``; scores become ``softmax(log(score) / T)``.
  It never changes which label wins.
- ``isotonic``: a monotone map from the winning label's score to the chance it
  is right (pool-adjacent-violators); the other labels share the rest in their
  old proportions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from claims.errors import CalibrationError
from claims.metrics import expected_calibration_error

Method = Literal["auto", "temperature", "isotonic"]
IDENTITY_T = 1.0
Scores = Mapping[str, float]
_FLOOR = 1e-6


@dataclass(frozen=True)
class Calibration:
    method: Literal["temperature", "isotonic"]
    params: dict[str, Any] = field(default_factory=dict)

    def apply(self, scores: Scores) -> dict[str, float]:
        if not scores:
            return {}
        if self.method == "temperature":
            t = float(self.params["t"])
            logits = {k: math.log(max(v, _FLOOR)) / t for k, v in scores.items()}
            top = max(logits.values())
            weights = {k: math.exp(v - top) for k, v in logits.items()}
            total = sum(weights.values())
            return {k: w / total for k, w in weights.items()}
        best = max(scores, key=lambda k: scores[k])
        confidence = _step(self.params["x"], self.params["y"], scores[best])
        rest = sum(v for k, v in scores.items() if k != best)
        others = len(scores) - 1
        return {
            k: confidence
            if k == best
            else (1 - confidence) * (v / rest if rest > 0 else 1 / max(others, 1))
            for k, v in scores.items()
        }


def _step(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """Linear interpolation between the fitted points, flat beyond them."""
    if not xs:
        return x
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    for i in range(1, len(xs)):
        if x <= xs[i]:
            span = xs[i] - xs[i - 1]
            weight = (x - xs[i - 1]) / span if span else 1.0
            return ys[i - 1] + weight * (ys[i] - ys[i - 1])
    return ys[-1]


def _nll(samples: Sequence[tuple[Scores, str]], t: float) -> float:
    calibration = Calibration("temperature", {"t": t})
    return -sum(math.log(max(calibration.apply(s)[label], _FLOOR)) for s, label in samples)


def fit_temperature(samples: Sequence[tuple[Scores, str]]) -> Calibration:
    """The ``T`` in [0.05, 20] of least negative log-likelihood (golden section, log scale)."""
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = _nll(samples, math.exp(a)), _nll(samples, math.exp(b))
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = _nll(samples, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = _nll(samples, math.exp(b))
    return Calibration("temperature", {"t": round(math.exp((low + high) / 2), 6)})


def fit_isotonic(samples: Sequence[tuple[Scores, str]]) -> Calibration:
    """Pool-adjacent-violators on (winning score, was it right)."""
    grouped: dict[float, list[float]] = {}  # equal scores are one point: [sum of y, count]
    for scores, label in samples:
        x = max(scores.values())
        right = 1.0 if max(scores, key=lambda k: scores[k]) == label else 0.0
        entry = grouped.setdefault(x, [0.0, 0.0])
        entry[0] += right
        entry[1] += 1
    blocks: list[list[float]] = []  # [sum of x, sum of y, count]
    for x, (y, n) in sorted(grouped.items()):
        blocks.append([x * n, y, n])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] > blocks[-1][1] / blocks[-1][2]:
            x2, y2, n2 = blocks.pop()
            blocks[-1][0] += x2
            blocks[-1][1] += y2
            blocks[-1][2] += n2
    xs = [round(b[0] / b[2], 6) for b in blocks]
    ys = [round(min(max(b[1] / b[2], 0.0), 1.0), 6) for b in blocks]
    return Calibration("isotonic", {"x": xs, "y": ys})


def ece(
    samples: Sequence[tuple[Scores, str]], calibration: Calibration | None = None
) -> float | None:
    confidences, correct = [], []
    for scores, label in samples:
        applied = calibration.apply(scores) if calibration else dict(scores)
        best = max(applied, key=lambda k: applied[k])
        confidences.append(applied[best])
        correct.append(best == label)
    return expected_calibration_error(confidences, correct)


@dataclass(frozen=True)
class Fit:
    calibration: Calibration
    fitted_on: int
    held_out: int
    ece_before: float | None
    ece_after: float | None


def fit_method(samples: Sequence[tuple[Scores, str]], method: str) -> Calibration:
    if method == "identity":
        return Calibration("temperature", {"t": IDENTITY_T})
    return fit_temperature(samples) if method == "temperature" else fit_isotonic(samples)


def choose(samples: Sequence[tuple[Scores, str]]) -> str:
    """identity, temperature or isotonic: the lowest two-fold cross-validated ECE."""
    half = len(samples) // 2
    folds = [(samples[:half], samples[half:]), (samples[half:], samples[:half])]
    best, best_ece = "identity", float("inf")
    for method in ("identity", "temperature", "isotonic"):
        errors = [ece(test, fit_method(train, method)) or 0.0 for train, test in folds]
        mean = sum(errors) / len(errors)
        if mean < best_ece - 1e-9:
            best, best_ece = method, mean
    return best


def fit(
    samples: Sequence[tuple[Scores, str]],
    method: Method = "auto",
    holdout: float = 0.5,
    seed: int = 0,
) -> Fit:
    """Fit on a random ``1 - holdout`` share of ``samples``; measure ECE on the rest.

    Raises:
        CalibrationError: With fewer than 10 samples (too few to fit and to judge).
    """
    if len(samples) < 10:
        raise CalibrationError(f"calibration needs at least 10 reviewed claims, got {len(samples)}")
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    cut = max(1, int(round(len(samples) * (1 - holdout))))
    train = [samples[i] for i in order[:cut]]
    test = [samples[i] for i in order[cut:]] or train
    chosen = choose(train) if method == "auto" else method
    calibration = fit_method(train, chosen)
    return Fit(calibration, len(train), len(test), ece(test), ece(test, calibration))
