"""Jobs in the store: the queue of items, their leases, and results written once.

A worker leases a batch of items of one job (PostgreSQL: ``FOR UPDATE SKIP
LOCKED``, so several workers share a job without waiting on each other;
SQLite: one writer at a time). An item whose lease ran out (its worker died)
is leased again; after ``max_attempts`` leases it fails. A result is written in
the same transaction that moves its item from ``leased`` to ``done`` or
``failed``, and only by the worker that holds the lease, under the item's own
key: written once, whoever crashed when.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import ConflictError, NotFoundError
from service.store.models import Job, JobItem, JobResult, utcnow

STATES = ("queued", "leased", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")


def create_job(db: Session, job: Job, items: Sequence[JobItem]) -> tuple[Job, bool]:
    """Store a job and its items in one transaction; ``(job, created)``.

    A job whose Idempotency-Key was used before comes back as it is (created
    false) when its body was the same; with another body it is a conflict.
    """
    if job.idempotency_key is not None:
        found = _by_key(db, job.idempotency_key)
        if found is not None:
            return _same_body(found, job), False
    db.add(job)
    db.flush()
    for item in items:
        item.job_id = job.id
    db.add_all(items)
    try:
        db.commit()
    except IntegrityError:  # the same key, sent twice at once: the other one won
        db.rollback()
        found = _by_key(db, job.idempotency_key) if job.idempotency_key else None
        if found is None:
            raise
        return _same_body(found, job), False
    return job, True


def _by_key(db: Session, key: str) -> Job | None:
    return db.scalar(select(Job).where(Job.idempotency_key == key))


def _same_body(found: Job, job: Job) -> Job:
    if found.body_sha256 != job.body_sha256:
        raise ConflictError(
            f"Idempotency-Key {job.idempotency_key!r} was used for another body (job {found.id})",
            "idempotency_conflict",
        )
    return found


def get_job(db: Session, job_id: str) -> Job:
    job = db.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id!r}", "job_not_found")
    return job


def list_jobs(db: Session, limit: int = 50, before: str | None = None) -> list[Job]:
    """The newest jobs first, ``limit`` of them (``before``: a job id of the page before)."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if before is not None:
        anchor = get_job(db, before)
        query = query.where(
            or_(
                Job.created_at < anchor.created_at,
                and_(Job.created_at == anchor.created_at, Job.id < anchor.id),
            )
        )
    return list(db.scalars(query))


@dataclass(frozen=True)
class Progress:
    """How far a job is: items per state, claims checked, and when items finished."""

    states: dict[str, int]
    claims: int
    first_finished: datetime | None
    last_finished: datetime | None


def progress(db: Session, job_id: str) -> Progress:
    rows = db.execute(
        select(JobItem.state, func.count(), func.sum(JobItem.claims))
        .where(JobItem.job_id == job_id)
        .group_by(JobItem.state)
    ).all()
    states = dict.fromkeys(STATES, 0)
    claims = 0
    for state, count, summed in rows:
        states[state] = count
        claims += int(summed or 0)
    first, last = db.execute(
        select(func.min(JobItem.finished_at), func.max(JobItem.finished_at)).where(
            JobItem.job_id == job_id, JobItem.finished_at.is_not(None)
        )
    ).one()
    return Progress(states, claims, first, last)


def lease_items(
    db: Session, worker: str, limit: int, lease_s: float, max_attempts: int = 3
) -> list[JobItem]:
    """Lease up to ``limit`` items of the oldest job that has any to do, to ``worker``.

    The lease is one conditional ``UPDATE … RETURNING``: of two workers that picked
    the same items, the database lets one have them. Items leased ``max_attempts``
    times already (their workers died each time) fail instead.
    """
    now = utcnow()
    claimable = and_(
        JobItem.state.in_(("queued", "leased")),
        or_(JobItem.state == "queued", JobItem.lease_until < now),
    )
    postgres = db.get_bind().dialect.name == "postgresql"
    oldest = select(JobItem.job_id).where(claimable).order_by(JobItem.id).limit(1)
    job_id = db.scalar(oldest.with_for_update(skip_locked=True) if postgres else oldest)
    if job_id is None:
        db.rollback()
        return []
    picked = (
        select(JobItem.id)
        .where(JobItem.job_id == job_id, claimable)
        .order_by(JobItem.position)
        .limit(limit)
    )
    ids = list(db.scalars(picked.with_for_update(skip_locked=True) if postgres else picked))
    for item in db.scalars(
        select(JobItem).where(JobItem.id.in_(ids), JobItem.attempts >= max_attempts, claimable)
    ):
        _finish(db, item, {"id": item.payload.get("id"), "error": _GAVE_UP}, 0, "failed", now)
    won = list(
        db.scalars(
            update(JobItem)
            .where(JobItem.id.in_(ids), claimable, JobItem.attempts < max_attempts)
            .values(
                state="leased",
                leased_by=worker,
                lease_until=now + timedelta(seconds=lease_s),
                attempts=JobItem.attempts + 1,
            )
            .returning(JobItem.id)
        )
    )
    job = db.get(Job, job_id)
    if job is not None and job.status == "queued":
        job.status, job.started_at = "running", now
    _close_if_finished(db, job_id, now)
    db.commit()
    if not won:
        return []
    return list(db.scalars(select(JobItem).where(JobItem.id.in_(won)).order_by(JobItem.position)))


_GAVE_UP = {
    "code": "worker_lost",
    "message": "the workers that took this item stopped before finishing it, every time",
}


@dataclass(frozen=True)
class Outcome:
    """What a worker made of one leased item: its result row, claims, and ``done``/``failed``."""

    item_pk: int
    body: dict[str, Any]
    claims: int
    state: str


def report_progress(
    db: Session, item_pk: int, worker: str, lease_s: float, progress: dict[str, Any]
) -> bool:
    """Record how far a long item (a corpus change) has got and renew its lease; whether
    ``worker`` still holds it (if not, it should stop: another has taken it over)."""
    item = db.get(JobItem, item_pk)
    if item is None:
        return False
    held = db.execute(
        update(JobItem)
        .where(JobItem.id == item_pk, JobItem.state == "leased", JobItem.leased_by == worker)
        .values(lease_until=utcnow() + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        return False
    db.execute(update(Job).where(Job.id == item.job_id).values(progress=progress))
    db.commit()
    return True


def finish_items(db: Session, worker: str, outcomes: Sequence[Outcome]) -> int:
    """Record the outcomes of items ``worker`` still holds, in one transaction; how many.

    An item whose lease passed to another worker, or whose job was cancelled, is
    left as it is: its result is written by whoever holds it, once.
    """
    now = utcnow()
    kept = 0
    jobs = set()
    for outcome in outcomes:
        item = db.get(JobItem, outcome.item_pk)
        if item is None or item.state != "leased" or item.leased_by != worker:
            continue
        if _finish(db, item, outcome.body, outcome.claims, outcome.state, now, worker):
            jobs.add(item.job_id)
            kept += 1
    for job_id in sorted(jobs):  # one order of row locks for every worker
        _close_if_finished(db, job_id, now)
    db.commit()
    return kept


def _finish(
    db: Session,
    item: JobItem,
    body: dict[str, Any],
    claims: int,
    state: str,
    now: datetime,
    holder: str | None = None,
) -> bool:
    """Move an item to ``state`` with its result, if it is still where it was (and held
    by ``holder``, when given): the result is written with the move or not at all."""
    where = [JobItem.id == item.id, JobItem.state == item.state]
    if holder is not None:
        where.append(JobItem.leased_by == holder)
    moved = db.execute(
        update(JobItem)
        .where(*where)
        .values(state=state, claims=claims, error=body.get("error"), finished_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return False
    db.add(JobResult(item_pk=item.id, job_id=item.job_id, position=item.position, body=body))
    db.flush()
    return True


def _close_if_finished(db: Session, job_id: str, now: datetime) -> None:
    # The job's row is locked before its open items are counted: two workers finishing
    # its last items at once would otherwise each count the other's as still open (neither
    # sees the other's uncommitted moves), and the job would stay running. The second to
    # take the lock counts after the first has committed. FOR NO KEY UPDATE, because the
    # results just inserted hold KEY SHARE locks on the job's row (their foreign key).
    job = db.get(Job, job_id, with_for_update={"key_share": True}, populate_existing=True)
    open_items = db.scalar(
        select(func.count()).where(JobItem.job_id == job_id, JobItem.state.not_in(FINISHED))
    )
    if job is not None and not open_items and job.status in ("queued", "running"):
        job.status, job.finished_at = "done", now
        _callback_due(job, now)


def _callback_due(job: Job, now: datetime) -> None:
    if job.callback_url:
        job.callback_state, job.callback_next_at, job.callback_attempts = "pending", now, 0


def cancel_job(db: Session, job_id: str) -> Job:
    """Stop a job: items not finished are cancelled (a worker's result for them is dropped)."""
    job = get_job(db, job_id)
    if job.status in ("queued", "running"):
        db.execute(
            update(JobItem)
            .where(JobItem.job_id == job_id, JobItem.state.in_(("queued", "leased")))
            .values(state="cancelled", leased_by=None, lease_until=None)
        )
        job.status, job.finished_at = "cancelled", utcnow()
        _callback_due(job, job.finished_at)
        db.commit()
    return job


def retry_failed(db: Session, job_id: str) -> int:
    """Queue a job's failed items again (their results go); how many."""
    job = get_job(db, job_id)
    failed = list(
        db.scalars(select(JobItem.id).where(JobItem.job_id == job_id, JobItem.state == "failed"))
    )
    if not failed:
        return 0
    db.execute(delete(JobResult).where(JobResult.item_pk.in_(failed)))
    db.execute(
        update(JobItem)
        .where(JobItem.id.in_(failed))
        .values(state="queued", attempts=0, error=None, finished_at=None, claims=0)
    )
    job.status, job.finished_at = "running", None
    job.callback_state = job.callback_next_at = None  # told again when it ends again
    db.commit()
    return len(failed)


def results(db: Session, job_id: str, after: int = -1, limit: int = 1000) -> list[JobResult]:
    """Results of a job in item order, those after position ``after``.

    Only the finished prefix is given: a result waits until every item before it
    is finished too, so a reader that resumes after the last position it read
    never skips an item that a slower worker finished later.
    """
    pending = db.scalar(
        select(func.min(JobItem.position)).where(
            JobItem.job_id == job_id, JobItem.state.not_in(FINISHED)
        )
    )
    query = (
        select(JobResult)
        .where(JobResult.job_id == job_id, JobResult.position > after)
        .order_by(JobResult.position)
        .limit(limit)
    )
    if pending is not None:
        query = query.where(JobResult.position < pending)
    return list(db.scalars(query))


def all_results(db: Session, job_id: str) -> Iterator[JobResult]:
    """Every result of a job, finished or not in order, read a page at a time."""
    yield from db.scalars(
        select(JobResult)
        .where(JobResult.job_id == job_id)
        .order_by(JobResult.position)
        .execution_options(yield_per=500)
    )


def take_callback(db: Session, hold_s: float) -> Job | None:
    """A finished job whose callback is due, held for ``hold_s`` (against other workers)
    by moving its next try forward; ``None`` when none is due."""
    now = utcnow()
    due = (
        select(Job.id, Job.callback_next_at)
        .where(Job.callback_state == "pending", Job.callback_next_at <= now)
        .order_by(Job.callback_next_at)
        .limit(1)
    )
    if db.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    found = db.execute(due).first()
    if found is None:
        db.rollback()
        return None
    held = db.execute(
        update(Job)
        .where(Job.id == found.id, Job.callback_next_at == found.callback_next_at)
        .values(callback_next_at=now + timedelta(seconds=hold_s))
    )
    db.commit()
    if held.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return db.get(Job, found.id)


def callback_tried(db: Session, job_id: str, error: str | None, retry_at: datetime | None) -> None:
    """Record a try: sent (``error`` None), to be tried again at ``retry_at``, or given up."""
    job = get_job(db, job_id)
    job.callback_attempts += 1
    job.callback_error = error
    if error is None:
        job.callback_state, job.callback_next_at = "sent", None
    elif retry_at is None:
        job.callback_state, job.callback_next_at = "failed", None
    else:
        job.callback_next_at = retry_at
    db.commit()
