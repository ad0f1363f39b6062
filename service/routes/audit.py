"""The audit log of admin actions (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from service.deps import AdminDep, SessionDep
from service.schemas import AuditEventOut, problem_responses
from service.store import audit as audit_store

router = APIRouter(prefix="/v1", tags=["keys"], responses=problem_responses(401, 403, 422, 500))


@router.get("/audit")
def audit_log(
    db: SessionDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    since: datetime | None = None,
) -> list[AuditEventOut]:
    """Admin actions newest first: keys created, rotated and revoked; corpora created,
    changed and rebuilt; calibrations fitted. Page with ``before=<last id>``."""
    return [
        AuditEventOut.model_validate(e, from_attributes=True)
        for e in audit_store.events(db, limit, before, since)
    ]
