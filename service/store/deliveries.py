"""Webhook deliveries kept until processed, and the checks predicted for Label Studio tasks.

A webhook is answered as soon as its delivery row is committed; a worker then
leases the row, processes it and records the outcome. A redelivery (the same
digest) finds the row already there. A worker that dies mid-way leaves the row
to lease expiry, and what it had already recorded is recognised on the next
try (a review's ``source`` is unique).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.store.models import Check, Delivery, LabelStudioTask, utcnow

# After this many leases (each one a crash or an error mid-way) a delivery is failed.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Received:
    """A delivery as accepted: its row id, and whether it had been received before."""

    id: int
    duplicate: bool


def receive(
    db: Session,
    source: str,
    key: str,
    action: str,
    payload: dict[str, Any],
    sender: str,
    api_key_id: int | None,
) -> Received:
    """Keep a delivery (committed before this returns); the same ``key`` again is a duplicate."""
    found = db.scalar(select(Delivery.id).where(Delivery.key == key))
    if found is not None:
        return Received(found, duplicate=True)
    row = Delivery(
        source=source,
        key=key,
        action=action,
        payload=payload,
        sender=sender,
        api_key_id=api_key_id,
        state="pending",
        attempts=0,
        not_before=utcnow(),
        outcome={},
    )
    db.add(row)
    try:
        db.commit()
    except IntegrityError:  # the same delivery, received at the same moment
        db.rollback()
        again = db.scalar(select(Delivery.id).where(Delivery.key == key))
        assert again is not None
        return Received(again, duplicate=True)
    return Received(row.id, duplicate=False)


def lease_next(db: Session, source: str, lease_s: float) -> Delivery | None:
    """The oldest pending delivery that is due and unleased, now leased to the caller."""
    now = utcnow()
    due = db.scalars(
        select(Delivery.id)
        .where(
            Delivery.source == source,
            Delivery.state == "pending",
            Delivery.not_before <= now,
            or_(Delivery.leased_until.is_(None), Delivery.leased_until < now),
        )
        .order_by(Delivery.id)
        .limit(5)
    ).all()
    for delivery_id in due:
        taken = db.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.state == "pending",
                or_(Delivery.leased_until.is_(None), Delivery.leased_until < now),
            )
            .values(leased_until=now + timedelta(seconds=lease_s), attempts=Delivery.attempts + 1)
        )
        db.commit()
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return db.get(Delivery, delivery_id, populate_existing=True)
    return None


def finish(db: Session, delivery_id: int, state: str, outcome: dict[str, Any]) -> None:
    """Record how a delivery ended: ``done`` or ``failed``."""
    db.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(state=state, outcome=outcome, leased_until=None, finished_at=utcnow())
    )
    db.commit()


def postpone(
    db: Session,
    delivery_id: int,
    until: datetime,
    outcome: dict[str, Any],
    counted: bool = True,
) -> None:
    """Try a delivery again at ``until``; ``counted=False`` when it only waits (e.g. for
    another trainer's lease to run out), so the wait is not one of its attempts."""
    db.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            not_before=until,
            leased_until=None,
            outcome=outcome,
            attempts=Delivery.attempts - (0 if counted else 1),
        )
    )
    db.commit()


def recent(db: Session, source: str, limit: int) -> list[Delivery]:
    return list(
        db.scalars(
            select(Delivery)
            .where(Delivery.source == source)
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
    )


def link_task(db: Session, project: int, task: int, check_id: str, model_version: str) -> None:
    """Remember the check predicted for a task (the latest one wins)."""
    for _ in range(2):
        row = db.get(LabelStudioTask, (project, task))
        if row is None:
            db.add(
                LabelStudioTask(
                    project=project, task=task, check_id=check_id, model_version=model_version
                )
            )
        else:
            row.check_id, row.model_version, row.updated_at = check_id, model_version, utcnow()
        try:
            db.commit()
            return
        except IntegrityError:  # predicted at the same moment by another request: update it
            db.rollback()
    raise RuntimeError(f"could not link task {task} of project {project}")


def task_check(db: Session, project: int, task: int) -> str | None:
    row = db.get(LabelStudioTask, (project, task))
    return None if row is None else row.check_id


def project_corpora(db: Session, project: int) -> list[str]:
    """The corpora of the checks predicted for a project's tasks."""
    return sorted(
        set(
            db.scalars(
                select(Check.corpus_name)
                .join(LabelStudioTask, LabelStudioTask.check_id == Check.id)
                .where(LabelStudioTask.project == project)
            )
        )
    )
