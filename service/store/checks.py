"""Checks, their claims and the evidence of each claim."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from claims.aggregation import review_priority
from claims.types import Reason, Span, Summary
from service.pipeline import Outcome
from service.store.models import Check, Claim, Evidence


def _span(span: Span | None) -> dict[str, int] | None:
    return {"start": span.start, "end": span.end} if span else None


def reason_json(reason: Reason) -> dict[str, Any]:
    body: dict[str, Any] = {"code": reason.code, "message": reason.message}
    if reason.claim_text is not None:
        body["claim"] = {"text": reason.claim_text, "span": _span(reason.claim_span)}
    if reason.evidence_text is not None:
        body["evidence"] = {
            "text": reason.evidence_text,
            "span": _span(reason.evidence_span),
            "passage_id": reason.passage_id,
        }
    return body


def summary_json(summary: Summary) -> dict[str, Any]:
    body = asdict(summary)
    body["counts"] = {str(label): n for label, n in summary.counts.items()}
    return body


def to_rows(
    outcome: Outcome, metadata: dict[str, Any] | None = None, created_by: str | None = None
) -> Check:
    """The ORM objects for an outcome, not yet added to any session."""
    check = Check(
        id=outcome.id,
        kind=outcome.kind,
        text=outcome.text,
        prompt=outcome.prompt,
        corpus_name=outcome.corpus,
        corpus_version=outcome.corpus_version,
        extractor=outcome.extractor,
        verifier=outcome.verifier,
        verifier_version=outcome.verifier_version,
        summary=summary_json(outcome.summary),
        warnings=[{"code": n.code, "message": n.message} for n in outcome.notices],
        metadata_=metadata or {},
        created_by=created_by,
        claims=[],
    )
    for position, (claim_id, result) in enumerate(
        zip(outcome.claim_ids, outcome.results, strict=True)
    ):
        verdict = result.verdict
        claim = Claim(
            id=claim_id,
            check_id=outcome.id,
            position=position,
            text=result.claim.text,
            source_text=result.claim.source_text,
            spans=[_span(s) for s in result.claim.spans],
            checkworthy=result.claim.checkworthy,
            checkworthy_reason=result.claim.reason,
            verdict=str(verdict.label) if verdict else None,
            confidence=verdict.confidence if verdict else None,
            scores={str(k): v for k, v in verdict.scores.items()} if verdict else {},
            reasons=[reason_json(r) for r in verdict.reasons] if verdict else [],
            flagged=result.flagged,
            review_state="unreviewed",
            version=1,
            priority=review_priority(verdict),
            reviews_needed=outcome.reviews_needed[position] if outcome.reviews_needed else 1,
            calibration_id=outcome.calibration_id if verdict else None,
            raw_scores=outcome.raw_scores[position] if outcome.raw_scores else {},
        )
        # Set every collection explicitly, so a detached row never tries a lazy load.
        claim.evidence = [
            Evidence(
                rank=rank,
                passage_id=judgement.passage.passage_id,
                document_id=judgement.passage.document_id,
                title=judgement.passage.title,
                text=judgement.passage.text,
                span_start=judgement.span.start,
                span_end=judgement.span.end,
                doc_start=judgement.passage.doc_span.start,
                doc_end=judgement.passage.doc_span.end,
                retrieval_score=judgement.passage.retrieval_score,
                similarity=judgement.similarity,
                stance=str(judgement.stance),
            )
            for rank, judgement in enumerate(verdict.evidence if verdict else ())
        ]
        check.claims.append(claim)
    return check


def record(
    db: Session,
    outcome: Outcome,
    metadata: dict[str, Any] | None = None,
    created_by: str | None = None,
    store: bool = True,
) -> Check:
    """The rows of an outcome, stored in one transaction unless ``store`` is false."""
    check = to_rows(outcome, metadata, created_by)
    if store:
        db.add(check)
        db.commit()
    return check


def get_check(db: Session, check_id: str) -> Check | None:
    return db.scalar(
        select(Check)
        .where(Check.id == check_id)
        .options(selectinload(Check.claims).selectinload(Claim.evidence))
    )


def get_claim(db: Session, claim_id: str) -> Claim | None:
    return db.scalar(
        select(Claim).where(Claim.id == claim_id).options(selectinload(Claim.evidence))
    )
