"""The trainer loop: review queue, reviews, agreement, export, calibration."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from claims.types import Label
from service import reviews
from service.deps import SessionDep, SettingsDep, TrainerDep, audit
from service.errors import BadRequestError
from service.schemas import (
    CORPUS_NAME,
    CalibrationCreate,
    CalibrationOut,
    ClaimOut,
    QueueItemOut,
    QueueOut,
    ReviewCreate,
    ReviewOut,
    ReviewResultOut,
    problem_responses,
)
from service.store import calibrations as calibration_store
from service.store import reviews as review_store
from service.store.reviews import QueueFilter, ReviewDraft

router = APIRouter(
    prefix="/v1", tags=["reviews"], responses=problem_responses(400, 401, 403, 404, 409, 422, 500)
)


def _metadata_filter(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise BadRequestError(
                f"metadata filters are key=value, not {value!r}", "bad_metadata_filter"
            )
        pairs.append((key, wanted))
    return tuple(pairs)


@router.get("/review-queue")
def review_queue(
    db: SessionDep,
    settings: SettingsDep,
    principal: TrainerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    corpus: Annotated[str | None, Query(pattern=CORPUS_NAME)] = None,
    verdict: Label | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    metadata: Annotated[list[str], Query(description="key=value on the check's metadata")] = [],  # noqa: B006
) -> QueueOut:
    """Flagged claims not yet reviewed (enough), most useful first, leased to the caller.

    A claim handed out here is leased to the caller for ``review_lease_s``
    seconds: nobody else gets it meanwhile. Claims picked for a second
    opinion come back to a different trainer after the first review.
    """
    filters = QueueFilter(corpus, verdict, since, until, _metadata_filter(metadata))
    handed, following = review_store.queue(
        db, principal.name, limit, settings.review_lease_s, filters, cursor
    )
    items = [
        QueueItemOut(
            claim=ClaimOut.from_row(claim),
            check_text=claim.check.text,
            prompt=claim.check.prompt,
            corpus=claim.check.corpus_name,
            priority=claim.priority,
            reviews_needed=claim.reviews_needed,
            lease_expires_at=expires,
        )
        for claim, expires in handed
    ]
    return QueueOut(items=items, next_cursor=following)


@router.post("/claims/{claim_id}/reviews", status_code=201)
def create_review(
    claim_id: str, body: ReviewCreate, db: SessionDep, principal: TrainerDep
) -> ReviewResultOut:
    """Confirm or correct a claim's verdict; a stale ``expected_version`` is a 409."""
    draft = ReviewDraft(
        claim_id,
        principal.name,
        body.action,
        None if body.label is None else Label(body.label),
        body.expected_version,
        api_key_id=principal.key_id,
        corrected_text=body.corrected_text,
        evidence_ids=tuple(body.evidence_ids),
        note=body.note,
    )
    review, claim = reviews.submit(db, draft)
    return ReviewResultOut(
        review=ReviewOut.from_row(review),
        claim_version=claim.version,
        review_state=claim.review_state,
    )


@router.get("/claims/{claim_id}/reviews")
def list_reviews(claim_id: str, db: SessionDep, _: TrainerDep) -> list[ReviewOut]:
    """The claim's review history, oldest first (undo is a newer review)."""
    return [ReviewOut.from_row(r) for r in review_store.reviews_of(db, claim_id)]


@router.get("/agreement")
def agreement(
    db: SessionDep,
    _: TrainerDep,
    corpus: Annotated[str | None, Query(pattern=CORPUS_NAME)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """How often the model agrees with trainers, and trainers with each other.

    The trainer's label is the latest review of a claim; Cohen's kappa pairs
    the first two reviewers of each doubly reviewed claim (their latest labels).
    """
    return reviews.agreement_report(review_store.judged(db, corpus, since, until))


@router.get(
    "/reviews/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines"}},
)
def export_reviews(
    db: SessionDep,
    _: TrainerDep,
    format: Literal["jsonl", "preference"] = "jsonl",  # noqa: A002 (the query parameter's name)
    corpus: Annotated[str | None, Query(pattern=CORPUS_NAME)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """Every review with its claim and response (``jsonl``), or DPO pairs (``preference``)."""
    rows = review_store.export_rows(db, corpus, since, until)
    lines = rows if format == "jsonl" else reviews.preference_rows(rows)
    body = (json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return StreamingResponse(body, media_type="application/x-ndjson")


@router.post("/calibration", status_code=201)
def create_calibration(
    body: CalibrationCreate, request: Request, db: SessionDep, principal: TrainerDep
) -> CalibrationOut:
    """Fit a calibration of a corpus's confidences from its reviews; new checks use it."""
    row = reviews.calibrate(db, body.corpus, body.method, body.holdout, principal.name)
    details = {"calibration": row.id, "method": row.method}
    audit(request, principal, "calibration.fit", f"corpus {body.corpus}", details)
    return CalibrationOut.from_row(row)


@router.get("/calibration")
def list_calibrations(
    db: SessionDep, _: TrainerDep, corpus: Annotated[str | None, Query(pattern=CORPUS_NAME)] = None
) -> list[CalibrationOut]:
    """Fitted calibrations, oldest first; the latest of a corpus is in use."""
    return [CalibrationOut.from_row(r) for r in calibration_store.list_for(db, corpus)]
