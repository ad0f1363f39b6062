"""The trainer loop: review queue, reviews, agreement, export, calibration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from claims import calibration as calibrating
from claims import metrics
from service.deps import SessionDep, SettingsDep, TrainerDep
from service.errors import BadRequestError, NotFoundError
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
from service.store import corpora as corpus_store
from service.store import reviews as review_store
from service.store.reviews import QueueFilter

router = APIRouter(
    prefix="/v1", tags=["reviews"], responses=problem_responses(400, 401, 403, 404, 409, 422, 500)
)
VerdictQuery = Literal["SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"]


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
    verdict: VerdictQuery | None = None,
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
    items = []
    for claim, expires in handed:
        full = review_store.get_claim(db, claim.id)
        items.append(
            QueueItemOut(
                claim=ClaimOut.from_row(full),
                check_text=full.check.text,
                prompt=full.check.prompt,
                corpus=full.check.corpus_name,
                priority=full.priority,
                reviews_needed=full.reviews_needed,
                lease_expires_at=expires,
            )
        )
    return QueueOut(items=items, next_cursor=following)


@router.post("/claims/{claim_id}/reviews", status_code=201)
def create_review(
    claim_id: str, body: ReviewCreate, db: SessionDep, principal: TrainerDep
) -> ReviewResultOut:
    """Confirm or correct a claim's verdict; a stale ``expected_version`` is a 409."""
    review, claim = review_store.add_review(
        db,
        claim_id,
        principal.name,
        principal.key_id,
        body.action,
        body.label,
        body.corrected_text,
        body.evidence_ids,
        body.note,
        body.expected_version,
    )
    return ReviewResultOut(
        review=ReviewOut.from_row(review),
        claim_version=claim.version,
        review_state=claim.review_state,
    )


@router.get("/claims/{claim_id}/reviews")
def list_reviews(claim_id: str, db: SessionDep, _: TrainerDep) -> list[ReviewOut]:
    """The claim's review history, oldest first (undo is a newer review)."""
    return [ReviewOut.from_row(r) for r in review_store.reviews_of(db, claim_id)]


def agreement_report(judged: list[review_store.Judged]) -> dict[str, Any]:
    """Model-vs-trainer confusion (overall, by corpus, by verifier) and trainer-vs-trainer kappa."""

    def model_vs_trainer(rows: list[review_store.Judged]) -> dict[str, Any]:
        scored = [r for r in rows if r.verdict is not None]
        matrix = metrics.confusion([r.latest for r in scored], [r.verdict for r in scored])  # type: ignore[misc]
        return metrics.summary(matrix)

    by_corpus: dict[str, list[review_store.Judged]] = {}
    by_verifier: dict[str, list[review_store.Judged]] = {}
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
    return agreement_report(review_store.judged(db, corpus, since, until))


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
    reward = {"SUPPORTED": 1, "REFUTED": -1, "NOT_ENOUGH_INFO": 0}
    for check_id, claim_rows in by_check.items():
        check = checks[check_id]
        text = check["text"]
        if not text:
            continue
        ranges: list[list[Any]] = []
        for row in sorted(
            claim_rows, key=lambda r: r["claim"]["spans"][0]["start"] if r["claim"]["spans"] else 0
        ):
            review, spans = row["review"], row["claim"]["spans"]
            if review["label"] != "REFUTED" or not review["corrected_text"] or not spans:
                continue
            start, end = spans[0]["start"], spans[-1]["end"]
            if ranges and start < ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], end)
                ranges[-1][2].append(review["corrected_text"])
            else:
                ranges.append([start, end, [review["corrected_text"]]])
        if not ranges:
            continue
        chosen, cursor = [], 0
        for start, end, texts in ranges:
            chosen.append(text[cursor:start])
            chosen.append(" ".join(t.strip() for t in texts))
            cursor = end
        chosen.append(text[cursor:])
        yield {
            "check_id": check_id,
            "prompt": check["prompt"],
            "rejected": text,
            "chosen": "".join(chosen),
            "corpus": check["corpus"],
            "verifier": check["verifier"],
            "rewards": [
                {
                    "claim_id": r["claim"]["id"],
                    "text": r["claim"]["text"],
                    "spans": r["claim"]["spans"],
                    "label": r["review"]["label"],
                    "reward": reward[r["review"]["label"]],
                }
                for r in sorted(claim_rows, key=lambda r: r["claim"]["position"])
            ],
        }


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
    lines = rows if format == "jsonl" else preference_rows(rows)
    body = (json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return StreamingResponse(body, media_type="application/x-ndjson")


@router.post("/calibration", status_code=201)
def create_calibration(
    body: CalibrationCreate, db: SessionDep, principal: TrainerDep
) -> CalibrationOut:
    """Fit a calibration of a corpus's confidences from its reviews; new checks use it."""
    if corpus_store.get_corpus(db, body.corpus) is None:
        raise NotFoundError(f"no corpus named {body.corpus!r}", "corpus_not_found")
    samples = calibration_store.samples(db, body.corpus)
    try:
        fit = calibrating.fit(samples, body.method, body.holdout)
    except ValueError as exc:
        raise BadRequestError(str(exc), "too_few_reviews") from exc
    return CalibrationOut.from_row(calibration_store.record(db, body.corpus, fit, principal.name))


@router.get("/calibration")
def list_calibrations(
    db: SessionDep, _: TrainerDep, corpus: Annotated[str | None, Query(pattern=CORPUS_NAME)] = None
) -> list[CalibrationOut]:
    """Fitted calibrations, oldest first; the latest of a corpus is in use."""
    return [CalibrationOut.from_row(r) for r in calibration_store.list_for(db, corpus)]
