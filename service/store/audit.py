"""The audit log: admin actions on keys, corpora and calibration, append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import AuditEvent, utcnow


def record(
    db: Session, actor: str, action: str, target: str, details: dict[str, Any] | None = None
) -> None:
    """Append an event (committed here: it is written after the action it records)."""
    db.add(AuditEvent(at=utcnow(), actor=actor, action=action, target=target[:300],
                      details=details or {}))  # fmt: skip
    db.commit()


def events(db: Session, limit: int, before: int | None, since: datetime | None) -> list[AuditEvent]:
    """Newest first; ``before`` an event id, for the next page."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return list(db.scalars(query))
