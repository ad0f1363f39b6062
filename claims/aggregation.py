"""Per-response summary of claim verdicts."""

from __future__ import annotations

from collections.abc import Sequence

from claims.types import ClaimResult, Label, Summary, Verdict


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
