"""Checks, their claims and the evidence of each claim."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from claims import timing
from claims.types import CheckResult
from service.store.exchange import check_row, result_json
from service.store.models import Check, Claim


def to_rows(
    result: CheckResult, metadata: dict[str, Any] | None = None, created_by: str | None = None
) -> Check:
    """The rows of a check, not yet added to any session."""
    return check_row(result_json(result, metadata, created_by))


def record(
    db: Session,
    result: CheckResult,
    metadata: dict[str, Any] | None = None,
    created_by: str | None = None,
) -> Check:
    """Store a check with its claims and evidence, in one transaction (timed as its stage
    ``store``)."""
    with timing.recording(result.timings), timing.stage("store"):
        check = to_rows(result, metadata, created_by)
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
