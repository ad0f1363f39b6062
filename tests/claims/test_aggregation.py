"""How responses to one prompt rank: score, ties, preference pairs."""

from __future__ import annotations

from claims.aggregation import preference_pairs, rank, standing
from claims.types import Claim, ClaimResult, Label, Span, Verdict


def _claim(label: Label | None, confidence: float = 0.8, checkworthy: bool = True) -> ClaimResult:
    claim = Claim("x", "x", (Span(0, 1),), checkworthy=checkworthy)
    verdict = None if label is None else Verdict(label, confidence, {label: confidence}, (), ())
    return ClaimResult(claim, verdict, False)


def test_refuted_claims_weigh_by_confidence_and_unknowns_break_ties() -> None:
    clean = standing(0, [_claim(Label.SUPPORTED), _claim(Label.SUPPORTED)])
    unsure = standing(1, [_claim(Label.SUPPORTED), _claim(Label.NOT_ENOUGH_INFO)])
    wrong = standing(2, [_claim(Label.SUPPORTED), _claim(Label.REFUTED, 0.9)])
    barely = standing(3, [_claim(Label.SUPPORTED), _claim(Label.REFUTED, 0.1)])
    empty = standing(4, [_claim(None, checkworthy=False)])
    tie = standing(5, [_claim(Label.SUPPORTED), _claim(Label.NOT_ENOUGH_INFO)])
    assert (clean.score, unsure.score, round(wrong.score, 2), round(barely.score, 2)) == (
        1.0,
        0.5,
        0.05,
        0.45,
    )
    ranked = rank([wrong, empty, barely, tie, unsure, clean])
    assert [s.index for s in ranked] == [0, 1, 5, 3, 2, 4]
    pairs = preference_pairs(ranked)
    assert all(chosen.score > rejected.score and margin > 0 for chosen, rejected, margin in pairs)
    assert (1, 5) not in {(c.index, r.index) for c, r, _ in pairs}  # equal scores: no pair
    assert len(pairs) == 15 - 1
