"""Agreement and accuracy figures: confusion matrices, per-label scores, Cohen's kappa, ECE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from claims.types import Label

LABELS = tuple(str(label) for label in Label)


def confusion(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = LABELS
) -> dict[str, dict[str, int]]:
    """``matrix[gold][predicted]`` counts, every label present (zeros included)."""
    matrix = {g: dict.fromkeys(labels, 0) for g in labels}
    for g, p in zip(gold, predicted, strict=True):
        matrix[g][p] += 1
    return matrix


def per_label(matrix: dict[str, dict[str, int]]) -> dict[str, dict[str, float | None]]:
    """Precision, recall and F1 of each label; ``None`` where nothing was there to count."""
    out: dict[str, dict[str, float | None]] = {}
    for label in matrix:
        true_positive = matrix[label][label]
        predicted = sum(matrix[g][label] for g in matrix)
        actual = sum(matrix[label].values())
        precision = true_positive / predicted if predicted else None
        recall = true_positive / actual if actual else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall
            else (0.0 if precision is not None and recall is not None else None)
        )
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    return out


def summary(matrix: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over labels with support) and the per-label table."""
    total = sum(sum(row.values()) for row in matrix.values())
    correct = sum(matrix[label][label] for label in matrix)
    table = per_label(matrix)
    f1s = [row["f1"] for row in table.values() if row["support"] and row["f1"] is not None]
    recalls = [
        row["recall"] for row in table.values() if row["support"] and row["recall"] is not None
    ]
    return {
        "n": total,
        "accuracy": correct / total if total else None,
        "macro_f1": sum(f1s) / len(f1s) if f1s else None,
        "balanced_accuracy": sum(recalls) / len(recalls) if recalls else None,
        "per_label": table,
        "confusion": matrix,
    }


def cohen_kappa(
    first: Sequence[str], second: Sequence[str], labels: Sequence[str] = LABELS
) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; ``None`` for no items.

    ``(p_o - p_e) / (1 - p_e)``; when both raters always give one same label
    (``p_e = 1``) agreement is perfect and kappa is 1.
    """
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    expected = sum((first.count(label) / n) * (second.count(label) / n) for label in labels)
    if expected == 1.0:
        return 1.0
    return (observed - expected) / (1 - expected)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float | None:
    """ECE: the bin-weighted gap between confidence and accuracy (equal-width bins)."""
    n = len(confidences)
    if n == 0:
        return None
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [
            i for i, c in enumerate(confidences) if (low < c <= high) or (b == 0 and c <= high)
        ]
        if not members:
            continue
        accuracy = sum(correct[i] for i in members) / len(members)
        mean_confidence = sum(confidences[i] for i in members) / len(members)
        total += len(members) / n * abs(accuracy - mean_confidence)
    return total
