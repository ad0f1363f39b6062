"""The trainer loop's rules: what a review may say, agreement, preference pairs, calibration.

Routes and the command line call these; the store below keeps the rows
(leases, claim versions, append-only reviews) and knows none of the rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from claims import calibration as calibrating
from claims import metrics
from claims.types import Label
from service.errors import BadRequestError, NotFoundError
from service.store import calibrations as calibration_store
from service.store import corpora as corpus_store
from service.store import reviews as review_store
from service.store.models import Calibration, Claim, Review
from service.store.reviews import Judged, ReviewDraft

REWARD = {Label.SUPPORTED: 1, Label.REFUTED: -1, Label.NOT_ENOUGH_INFO: 0}


def submit(db: Session, draft: ReviewDraft) -> tuple[Review, Claim]:
    """Record a review: ``confirm`` keeps the claim's verdict, ``correct`` names a label.

    Raises:
        BadRequestError: Nothing to confirm, a confirm that changes the label, or a
            correction without one.
        ConflictError: The claim moved past ``draft.expected_version``, or another
            trainer holds its lease.
    """
    claim = review_store.get_claim(db, draft.claim_id)
    label = draft.label
    if draft.action == "confirm":
        if claim.verdict is None:
            raise BadRequestError("this claim has no verdict to confirm", "nothing_to_confirm")
        if label is not None and label != claim.verdict:
            raise BadRequestError(
                f"confirm keeps the verdict {claim.verdict}; send action correct to change it",
                "label_mismatch",
            )
        label = Label(claim.verdict)
    elif label is None:
        raise BadRequestError("a correction needs a label", "label_required")
    return review_store.add_review(db, claim, replace(draft, label=label))


def agreement_report(judged: list[Judged]) -> dict[str, Any]:
    """Model-vs-trainer confusion (overall, by corpus, by verifier) and trainer-vs-trainer kappa."""

    def model_vs_trainer(rows: list[Judged]) -> dict[str, Any]:
        scored = [r for r in rows if r.verdict is not None]
        matrix = metrics.confusion([r.latest for r in scored], [r.verdict for r in scored])  # type: ignore[misc]
        return metrics.summary(matrix)

    by_corpus: dict[str, list[Judged]] = {}
    by_verifier: dict[str, list[Judged]] = {}
    for row in judged:
        by_corpus.setdefault(row.corpus, []).append(row)
        by_verifier.setdefault(row.verifier, []).append(row)
    pairs = [list(r.labels.values())[:2] for r in judged if len(r.labels) >= 2]
    first, second = [p[0] for p in pairs], [p[1] for p in pairs]
    return {
        "reviewed_claims": len(judged),
        "model_vs_trainer": model_vs_trainer(judged),
        "by_corpus": {name: model_vs_trainer(rows) for name, rows in sorted(by_corpus.items())},
        "by_verifier": {name: model_vs_trainer(rows) for name, rows in sorted(by_verifier.items())},
        "trainer_vs_trainer": {
            "doubly_reviewed": len(pairs),
            "observed_agreement": (
                sum(a == b for a, b in zip(first, second, strict=True)) / len(pairs)
                if pairs
                else None
            ),
            "cohen_kappa": metrics.cohen_kappa(first, second),
        },
    }


def preference_rows(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """DPO pairs: the response as rejected; with refuted claims rewritten as chosen.

    Each refuted claim's sentence range (from its first to its last span) is
    replaced by the trainer's corrected text; claims of one range are joined.
    Checks without any such rewrite give no pair. Per-claim rewards: +1
    SUPPORTED, -1 REFUTED, 0 NOT_ENOUGH_INFO (the latest review of each claim).
    """
    checks: dict[str, dict[str, Any]] = {}
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        checks[row["check"]["id"]] = row["check"]
        latest[row["claim"]["id"]] = row
    by_check: dict[str, list[dict[str, Any]]] = {}
    for row in latest.values():
        by_check.setdefault(row["check"]["id"], []).append(row)
    for check_id, claim_rows in by_check.items():
        check = checks[check_id]
        if not check["text"]:
            continue
        chosen = _rewritten(check["text"], claim_rows)
        if chosen is None:
            continue
        yield {
            "check_id": check_id,
            "prompt": check["prompt"],
            "rejected": check["text"],
            "chosen": chosen,
            "corpus": check["corpus"],
            "verifier": check["verifier"],
            "rewards": [
                {
                    "claim_id": r["claim"]["id"],
                    "text": r["claim"]["text"],
                    "spans": r["claim"]["spans"],
                    "label": r["review"]["label"],
                    "reward": REWARD[Label(r["review"]["label"])],
                }
                for r in sorted(claim_rows, key=lambda r: r["claim"]["position"])
            ],
        }


def _rewritten(text: str, claim_rows: list[dict[str, Any]]) -> str | None:
    """The response with its corrected refuted claims in place, or None if none was."""
    ranges: list[list[Any]] = []
    for row in sorted(
        claim_rows, key=lambda r: r["claim"]["spans"][0]["start"] if r["claim"]["spans"] else 0
    ):
        review, spans = row["review"], row["claim"]["spans"]
        if review["label"] != Label.REFUTED or not review["corrected_text"] or not spans:
            continue
        start, end = spans[0]["start"], spans[-1]["end"]
        if ranges and start < ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], end)
            ranges[-1][2].append(review["corrected_text"])
        else:
            ranges.append([start, end, [review["corrected_text"]]])
    if not ranges:
        return None
    chosen, cursor = [], 0
    for start, end, texts in ranges:
        chosen.append(text[cursor:start])
        chosen.append(" ".join(t.strip() for t in texts))
        cursor = end
    chosen.append(text[cursor:])
    return "".join(chosen)


def calibrate(
    db: Session, corpus: str, method: calibrating.Method, holdout: float, by: str | None
) -> Calibration:
    """Fit a calibration of a corpus's confidences from its reviews and record it.

    Raises:
        NotFoundError: No such corpus.
        CalibrationError: Too few reviewed claims.
    """
    if corpus_store.get_corpus(db, corpus) is None:
        raise NotFoundError(f"no corpus named {corpus!r}", "corpus_not_found")
    fit = calibrating.fit(calibration_store.samples(db, corpus), method, holdout)
    return calibration_store.record(db, corpus, fit, by)
