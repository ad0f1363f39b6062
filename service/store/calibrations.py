"""Fitted confidence calibrations, versioned per corpus."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims.calibration import Calibration as Fitted
from claims.calibration import Fit
from service.store.models import Calibration, Check, Claim, Review


def latest(db: Session, corpus: str) -> Calibration | None:
    return db.scalar(
        select(Calibration)
        .where(Calibration.corpus_name == corpus)
        .order_by(Calibration.version.desc())
        .limit(1)
    )


def list_for(db: Session, corpus: str | None = None) -> list[Calibration]:
    query = select(Calibration).order_by(Calibration.corpus_name, Calibration.version)
    if corpus:
        query = query.where(Calibration.corpus_name == corpus)
    return list(db.scalars(query))


def record(db: Session, corpus: str, fit: Fit, created_by: str | None) -> Calibration:
    version = (
        db.scalar(select(func.max(Calibration.version)).where(Calibration.corpus_name == corpus))
        or 0
    ) + 1
    row = Calibration(
        corpus_name=corpus,
        version=version,
        method=fit.calibration.method,
        params=fit.calibration.params,
        fitted_on=fit.fitted_on,
        held_out=fit.held_out,
        ece_before=fit.ece_before,
        ece_after=fit.ece_after,
        created_by=created_by,
    )
    db.add(row)
    db.commit()
    return row


def samples(db: Session, corpus: str) -> list[tuple[dict[str, float], str]]:
    """(raw verifier scores, the trainers' latest label) of every reviewed claim of a corpus."""
    latest_review = (
        select(Review.claim_id, func.max(Review.id).label("last"))
        .group_by(Review.claim_id)
        .subquery()
    )
    rows = db.execute(
        select(Claim.raw_scores, Claim.scores, Review.label)
        .join(latest_review, latest_review.c.claim_id == Claim.id)
        .join(Review, Review.id == latest_review.c.last)
        .join(Check, Check.id == Claim.check_id)
        .where(Check.corpus_name == corpus, Claim.verdict.is_not(None))
        .order_by(Check.created_at, Check.id, Claim.position)
    )
    return [(dict(raw or scores), label) for raw, scores, label in rows if raw or scores]


def as_fitted(row: Calibration) -> Fitted:
    return Fitted(row.method, dict(row.params))  # type: ignore[arg-type]
