"""Per-response summary of claim verdicts."""

from __future__ import annotations

from collections.abc import Sequence

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
