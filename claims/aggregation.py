"""Per-response summary of claim verdicts, and how responses to one prompt rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from claims.types import ClaimResult, Label, Summary, Verdict


def review_priority(verdict: Verdict | None) -> float:
    """How useful a trainer's look at this verdict is: severity first, then uncertainty.

    A confident REFUTED (2–3) comes before any NOT_ENOUGH_INFO (1–2, the less
    sure the sooner), which comes before a borderline SUPPORTED (0–1, the less
    sure the sooner). Claims without a verdict are 0.
    """
    if verdict is None:
        return 0.0
    if verdict.label is Label.REFUTED:
        return 2.0 + verdict.confidence
    if verdict.label is Label.NOT_ENOUGH_INFO:
        return 2.0 - verdict.confidence
    return 1.0 - verdict.confidence


def is_flagged(verdict: Verdict | None, review_threshold: float) -> bool:
    """A claim needs a human when it is not SUPPORTED or its confidence is low.

    Args:
        verdict: The claim's verdict, ``None`` when the claim was not checked.
        review_threshold: Confidence below which even a SUPPORTED claim is flagged.
    """
    if verdict is None:
        return False
    return verdict.label is not Label.SUPPORTED or verdict.confidence < review_threshold


def summarise(results: Sequence[ClaimResult]) -> Summary:
    """Count labels and flags; factuality is supported / checkworthy claims."""
    checked = [r for r in results if r.claim.checkworthy and r.verdict is not None]
    counts = dict.fromkeys(Label, 0)
    for result in checked:
        assert result.verdict is not None
        counts[result.verdict.label] += 1
    checkworthy = sum(1 for r in results if r.claim.checkworthy)
    return Summary(
        claims=len(results),
        checkworthy=checkworthy,
        not_checkworthy=len(results) - checkworthy,
        counts=counts,
        flagged=sum(1 for r in results if r.flagged),
        factuality=counts[Label.SUPPORTED] / checkworthy if checkworthy else None,
    )


@dataclass(frozen=True)
class Standing:
    """Where a response stands among others to the same prompt (see :func:`rank`).

    Attributes:
        index: Its place in the list given.
        score: Share of its checkworthy claims SUPPORTED, less the refuted ones
            weighted by their confidence (from -1 to 1).
        supported: Share of checkworthy claims SUPPORTED.
        refuted: Summed confidence of its REFUTED claims ÷ checkworthy claims.
        unknown: Share of checkworthy claims NOT_ENOUGH_INFO (breaks ties: fewer first).
    """

    index: int
    score: float
    supported: float
    refuted: float
    unknown: float


def standing(index: int, results: Sequence[ClaimResult]) -> Standing:
    """A response's standing from its claims' verdicts (see :func:`standing_of`)."""
    return standing_of(
        index,
        [
            (r.verdict.label, r.verdict.confidence)
            for r in results
            if r.claim.checkworthy and r.verdict
        ],
    )


def standing_of(index: int, verdicts: Sequence[tuple[Label, float]]) -> Standing:
    """A response's standing from the (label, confidence) of its checkworthy claims; one
    with none stands at 0 and last among equals."""
    if not verdicts:
        return Standing(index, 0.0, 0.0, 0.0, 1.0)
    n = len(verdicts)
    supported = sum(label is Label.SUPPORTED for label, _ in verdicts) / n
    refuted = sum(confidence for label, confidence in verdicts if label is Label.REFUTED) / n
    unknown = sum(label is Label.NOT_ENOUGH_INFO for label, _ in verdicts) / n
    return Standing(index, supported - refuted, supported, refuted, unknown)


def rank(standings: Sequence[Standing]) -> list[Standing]:
    """Most factual first: by score, ties by the smaller NOT_ENOUGH_INFO share, then by
    the order given."""
    return sorted(standings, key=lambda s: (-s.score, s.unknown, s.index))


def preference_pairs(ranked: Sequence[Standing]) -> list[tuple[Standing, Standing, float]]:
    """Every (chosen, rejected, margin) of two responses whose scores differ, the better first."""
    return [
        (better, worse, better.score - worse.score)
        for k, better in enumerate(ranked)
        for worse in ranked[k + 1 :]
        if better.score > worse.score
    ]
