"""The trainer loop in the store: the review queue and its leases, reviews, agreement, export.

Reviews are append-only. A review names the claim version it saw; the claim's
version moves on with every review, so a stale writer gets a conflict instead
of silently overwriting. The queue hands claims out under leases: at most one
live lease per claim, taken with a conditional upsert that the database
serialises, so two trainers never hold the same claim at once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from claims.types import Label
from service.errors import BadRequestError, ConflictError, NotFoundError
from service.store.exchange import check_json, check_row, claim_json, claim_row
from service.store.models import Check, Claim, ClaimLease, Review, utcnow

OPEN = ("unreviewed", "needs_second")


@dataclass(frozen=True)
class QueueFilter:
    corpus: str | None = None
    verdict: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    metadata: tuple[tuple[str, str], ...] = ()


def encode_cursor(priority: float, claim_id: str) -> str:
    raw = json.dumps([priority, claim_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        priority, claim_id = json.loads(raw)
        return float(priority), str(claim_id)
    except (ValueError, TypeError) as exc:
        raise BadRequestError("the cursor is not one this service gave out", "bad_cursor") from exc


def _lease(db: Session, claim_id: str, holder: str, until: datetime, now: datetime) -> bool:
    """Take (or renew) the lease on a claim unless someone else holds a live one."""
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(ClaimLease)
        .values(claim_id=claim_id, holder=holder, expires_at=until)
        .on_conflict_do_update(
            index_elements=[ClaimLease.claim_id],
            set_={"holder": holder, "expires_at": until},
            where=or_(ClaimLease.expires_at < now, ClaimLease.holder == holder),
        )
        .returning(ClaimLease.claim_id)
    )
    return db.execute(statement).first() is not None


def queue(
    db: Session,
    holder: str,
    limit: int,
    lease_s: float,
    filters: QueueFilter,
    cursor: str | None = None,
) -> tuple[list[tuple[Claim, datetime]], str | None]:
    """Lease up to ``limit`` flagged, open claims to ``holder``, most useful first.

    Claims this holder already reviewed and claims leased to others are skipped.

    Returns:
        The claims with their lease expiry, and the cursor of the next page (or ``None``).
    """
    now = utcnow()
    until = now + timedelta(seconds=lease_s)
    leased_elsewhere = exists().where(
        ClaimLease.claim_id == Claim.id, ClaimLease.expires_at >= now, ClaimLease.holder != holder
    )
    mine = exists().where(Review.claim_id == Claim.id, Review.reviewer == holder)
    query = (
        select(Claim)
        .join(Check, Check.id == Claim.check_id)
        .options(selectinload(Claim.evidence), selectinload(Claim.check))
        .where(
            Claim.flagged.is_(True),
            Claim.checkworthy.is_(True),
            Claim.review_state.in_(OPEN),
            ~leased_elsewhere,
            ~mine,
        )
        .order_by(Claim.priority.desc(), Claim.id)
    )
    if filters.corpus:
        query = query.where(Check.corpus_name == filters.corpus)
    if filters.verdict:
        query = query.where(Claim.verdict == filters.verdict)
    if filters.since:
        query = query.where(Claim.created_at >= filters.since)
    if filters.until:
        query = query.where(Claim.created_at < filters.until)
    for key, value in filters.metadata:
        query = query.where(Check.metadata_[key].as_string() == value)
    if cursor:
        priority, claim_id = decode_cursor(cursor)
        query = query.where(
            or_(Claim.priority < priority, and_(Claim.priority == priority, Claim.id > claim_id))
        )
    handed: list[tuple[Claim, datetime]] = []
    last: Claim | None = None
    for claim in db.scalars(query.limit(limit * 3 + 10)):
        last = claim
        if _lease(db, claim.id, holder, until, now):
            handed.append((claim, until))
            if len(handed) == limit:
                break
    db.commit()
    following = (
        encode_cursor(last.priority, last.id) if last is not None and len(handed) == limit else None
    )
    return handed, following


def get_claim(db: Session, claim_id: str) -> Claim:
    claim = db.scalar(
        select(Claim).where(Claim.id == claim_id).options(selectinload(Claim.evidence))
    )
    if claim is None:
        raise NotFoundError(f"no claim with id {claim_id!r}", "claim_not_found")
    return claim


def _state_after(db: Session, claim: Claim, reviewer: str) -> str:
    """The claim's review state once ``reviewer`` has reviewed it too."""
    reviewers = set(db.scalars(select(Review.reviewer).where(Review.claim_id == claim.id)))
    return "reviewed" if len(reviewers | {reviewer}) >= claim.reviews_needed else "needs_second"


@dataclass(frozen=True)
class ReviewDraft:
    """A review as a trainer sends it (``service.reviews.submit`` applies the rules)."""

    claim_id: str
    reviewer: str
    action: str  # confirm | correct
    label: Label | None
    expected_version: int
    api_key_id: int | None = None
    corrected_text: str | None = None
    evidence_ids: tuple[str, ...] = ()
    note: str | None = None
    # The outside event that made it (see ``Review.source``): the same source twice is
    # one review.
    source: str | None = None


def add_review(db: Session, claim: Claim, draft: ReviewDraft) -> tuple[Review, Claim]:
    """Append a review if the claim is still at the draft's version and nobody else holds
    its lease; drop the reviewer's own lease."""
    assert draft.label is not None, "the label is decided before a review is stored"
    if draft.source is not None:
        done = db.scalar(select(Review).where(Review.source == draft.source))
        if done is not None:
            return done, claim
    now = utcnow()
    claim_id, reviewer, expected_version = claim.id, draft.reviewer, draft.expected_version
    held = db.scalar(
        select(ClaimLease).where(
            ClaimLease.claim_id == claim_id,
            ClaimLease.expires_at >= now,
            ClaimLease.holder != reviewer,
        )
    )
    if held is not None:
        raise ConflictError(
            f"claim {claim_id} is leased to another trainer until {held.expires_at.isoformat()}",
            "claim_leased",
        )
    state = _state_after(db, claim, reviewer)
    moved = db.execute(
        update(Claim)
        .where(Claim.id == claim_id, Claim.version == expected_version)
        .values(version=Claim.version + 1, review_state=state)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        current = db.scalar(select(Claim.version).where(Claim.id == claim_id))
        raise ConflictError(
            f"claim {claim_id} is at version {current}, not {expected_version}: "
            "read it again and review what is there now",
            "stale_version",
        )
    review = Review(
        claim_id=claim_id,
        reviewer=reviewer,
        api_key_id=draft.api_key_id,
        action=draft.action,
        label=str(draft.label),
        corrected_text=draft.corrected_text,
        evidence_ids=list(draft.evidence_ids),
        note=draft.note,
        claim_version=expected_version,
        created_at=now,
        source=draft.source,
    )
    db.add(review)
    db.execute(
        delete(ClaimLease).where(ClaimLease.claim_id == claim_id, ClaimLease.holder == reviewer)
    )
    db.commit()
    db.refresh(claim)
    return review, claim


def reviews_of(db: Session, claim_id: str) -> list[Review]:
    get_claim(db, claim_id)
    return list(db.scalars(select(Review).where(Review.claim_id == claim_id).order_by(Review.id)))


# Agreement -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """A reviewed claim: the model's verdict and each reviewer's latest label."""

    claim_id: str
    corpus: str
    verifier: str
    verdict: str | None
    labels: dict[str, str]  # reviewer -> label, in the order they first reviewed
    latest: str  # the latest label from anyone


def judged(
    db: Session,
    corpus: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Judged]:
    query = (
        select(Review, Claim.verdict, Check.corpus_name, Check.verifier, Check.verifier_version)
        .join(Claim, Claim.id == Review.claim_id)
        .join(Check, Check.id == Claim.check_id)
        .order_by(Review.id)
    )
    if corpus:
        query = query.where(Check.corpus_name == corpus)
    if since:
        query = query.where(Review.created_at >= since)
    if until:
        query = query.where(Review.created_at < until)
    found: dict[str, Judged] = {}
    for review, verdict, corpus_name, verifier, version in db.execute(query):
        entry = found.get(review.claim_id)
        labels = dict(entry.labels) if entry else {}
        labels[review.reviewer] = review.label  # insertion order: first review of each
        found[review.claim_id] = Judged(
            review.claim_id, corpus_name, f"{verifier}/{version}", verdict, labels, review.label
        )
    return list(found.values())


# Export and import ------------------------------------------------------------------------


def export_rows(
    db: Session,
    corpus: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 500,
) -> Iterator[dict[str, Any]]:
    """Every review with its claim and the response it came from, oldest first (streamed)."""
    last_id = 0
    while True:
        query = (
            select(Review)
            .join(Claim, Claim.id == Review.claim_id)
            .join(Check, Check.id == Claim.check_id)
            .where(Review.id > last_id)
            .order_by(Review.id)
            .limit(batch)
        )
        if corpus:
            query = query.where(Check.corpus_name == corpus)
        if since:
            query = query.where(Review.created_at >= since)
        if until:
            query = query.where(Review.created_at < until)
        reviews = list(db.scalars(query))
        if not reviews:
            return
        claims = {
            c.id: c
            for c in db.scalars(
                select(Claim)
                .where(Claim.id.in_({r.claim_id for r in reviews}))
                .options(selectinload(Claim.evidence), selectinload(Claim.check))
            )
        }
        for review in reviews:
            yield row_of(review, claims[review.claim_id])
        last_id = reviews[-1].id


def row_of(review: Review, claim: Claim) -> dict[str, Any]:
    """One exported row: a review, its claim, and the check the claim came from."""
    return {
        "review": {
            "id": review.id,
            "reviewer": review.reviewer,
            "action": review.action,
            "label": review.label,
            "corrected_text": review.corrected_text,
            "evidence_ids": list(review.evidence_ids),
            "note": review.note,
            "claim_version": review.claim_version,
            "created_at": review.created_at.isoformat(),
        },
        "claim": claim_json(claim),
        "check": check_json(claim.check, claims=False),
    }


def import_rows(db: Session, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    """Store exported rows; checks, claims and reviews already present are not duplicated.

    A review counts as present when the claim already has one from the same
    reviewer at the same time with the same label. Returns the reviews added.
    """
    added = 0
    for row in rows:
        check_doc, claim_doc, review_doc = row["check"], row["claim"], row["review"]
        if db.get(Check, check_doc["id"]) is None:
            db.add(check_row(check_doc, imported=True))
        claim = db.get(Claim, claim_doc["id"])
        if claim is None:
            claim = claim_row(claim_doc, check_doc["id"], imported=True)
            db.add(claim)
            db.flush()
        created = datetime.fromisoformat(review_doc["created_at"])
        present = db.scalar(
            select(func.count()).where(
                Review.claim_id == claim.id,
                Review.reviewer == review_doc["reviewer"],
                Review.created_at == created,
                Review.label == review_doc["label"],
            )
        )
        if present:
            continue
        db.add(
            Review(
                claim_id=claim.id,
                reviewer=review_doc["reviewer"],
                action=review_doc["action"],
                label=review_doc["label"],
                corrected_text=review_doc["corrected_text"],
                evidence_ids=review_doc["evidence_ids"],
                note=review_doc["note"],
                claim_version=review_doc["claim_version"],
                created_at=created,
            )
        )
        claim.review_state = _state_after(db, claim, review_doc["reviewer"])
        claim.version += 1
        added += 1
        db.flush()
    db.commit()
    return added
