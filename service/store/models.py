"""Typed SQLAlchemy models. Alembic migrations in ``migrations/`` build these tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_prefix", "prefix"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(200), unique=True)  # scrypt$salt$hash
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A key stops working at this time (rotation gives the old key a grace period).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Corpus(Base):
    __tablename__ = "corpora"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[CorpusVersion]] = relationship(
        back_populates="corpus", order_by="CorpusVersion.version"
    )


class CorpusVersion(Base):
    __tablename__ = "corpus_versions"
    __table_args__ = (UniqueConstraint("corpus_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    documents: Mapped[int] = mapped_column(Integer)
    passages: Mapped[int] = mapped_column(Integer)
    embedder: Mapped[str] = mapped_column(String(200))
    snapshot_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    corpus: Mapped[Corpus] = relationship(back_populates="versions")


class Check(Base):
    """One call that produced verdicts: a response checked, or claims verified directly."""

    __tablename__ = "checks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "check" or "verify"
    text: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str | None] = mapped_column(Text)
    corpus_name: Mapped[str] = mapped_column(String(100))
    corpus_version: Mapped[int] = mapped_column(Integer)
    extractor: Mapped[str | None] = mapped_column(String(100))
    verifier: Mapped[str] = mapped_column(String(100))
    verifier_version: Mapped[str] = mapped_column(String(50))
    summary: Mapped[dict[str, Any]] = mapped_column()
    # What the caller should know about how the claims were made (e.g. an extractor fallback).
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    claims: Mapped[list[Claim]] = relationship(
        back_populates="check", order_by="Claim.position", cascade="all, delete-orphan"
    )


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        Index("ix_claims_check_id", "check_id"),
        Index("ix_claims_queue", "flagged", "review_state", "priority"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    check_id: Mapped[str] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    source_text: Mapped[str] = mapped_column(Text)
    spans: Mapped[list[Any]] = mapped_column()
    checkworthy: Mapped[bool] = mapped_column(Boolean)
    checkworthy_reason: Mapped[str | None] = mapped_column(String(50))
    verdict: Mapped[str | None] = mapped_column(String(20))
    confidence: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    review_state: Mapped[str] = mapped_column(String(20), default="unreviewed")
    # Optimistic concurrency for reviews: a review names the version it saw.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Queue order: severity and uncertainty of the verdict (higher first).
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    # 2 for the share of claims handed to a second trainer to measure agreement.
    reviews_needed: Mapped[int] = mapped_column(Integer, default=1)
    # The calibration the confidence went through, if any, and the scores before it.
    calibration_id: Mapped[int | None] = mapped_column(Integer)
    raw_scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    check: Mapped[Check] = relationship(back_populates="claims")
    evidence: Mapped[list[Evidence]] = relationship(
        back_populates="claim", order_by="Evidence.rank", cascade="all, delete-orphan"
    )


class Evidence(Base):
    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_claim_id", "claim_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    passage_id: Mapped[str] = mapped_column(String(600))
    document_id: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    span_start: Mapped[int] = mapped_column(Integer)
    span_end: Mapped[int] = mapped_column(Integer)
    doc_start: Mapped[int] = mapped_column(Integer)
    doc_end: Mapped[int] = mapped_column(Integer)
    retrieval_score: Mapped[float] = mapped_column(Float)
    similarity: Mapped[float] = mapped_column(Float)
    stance: Mapped[str] = mapped_column(String(20))

    claim: Mapped[Claim] = relationship(back_populates="evidence")


class ClaimLease(Base):
    """A claim handed out by the review queue: one live lease per claim at most."""

    __tablename__ = "claim_leases"

    claim_id: Mapped[str] = mapped_column(
        ForeignKey("claims.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Calibration(Base):
    """A confidence calibration fitted from a corpus's reviews; versioned per corpus."""

    __tablename__ = "calibrations"
    __table_args__ = (UniqueConstraint("corpus_name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    corpus_name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column()
    fitted_on: Mapped[int] = mapped_column(Integer)
    held_out: Mapped[int] = mapped_column(Integer)
    ece_before: Mapped[float | None] = mapped_column(Float)
    ece_after: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Review(Base):
    """A trainer's confirmation or correction of a claim's verdict; never updated or deleted."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_claim_id", "claim_id"),
        Index("ux_reviews_source", "source", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(200))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(20))
    corrected_text: Mapped[str | None] = mapped_column(Text)
    evidence_ids: Mapped[list[Any]] = mapped_column(default=list)
    note: Mapped[str | None] = mapped_column(Text)
    claim_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What made it outside the API (e.g. one claim of a Label Studio annotation); unique,
    # so the same event processed twice records one review.
    source: Mapped[str | None] = mapped_column(String(200))


class Job(Base):
    """Work submitted over HTTP and done by workers: a bulk screen or a corpus change."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_callback", "callback_state", "callback_next_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # check: items checked against corpora; corpus: one change of a corpus (a large
    # upload or a rebuild), its one item the change.
    kind: Mapped[str] = mapped_column(String(20), default="check", server_default="check")
    status: Mapped[str] = mapped_column(String(20))  # queued, running, done, cancelled
    corpus: Mapped[str | None] = mapped_column(String(100))
    # A corpus change's progress: {"stage", "done", "total"} (documents).
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    top_k: Mapped[int | None] = mapped_column(Integer)
    # Idempotency-Key and the digest of the body it came with: the same pair gives
    # back the same job, another body with that key is a conflict.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    items: Mapped[int] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A URL told when the job ends: pending until it answers 2xx, failed after the last try.
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    callback_state: Mapped[str | None] = mapped_column(String(20))  # pending, sent, failed
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_error: Mapped[str | None] = mapped_column(Text)


class JobItem(Base):
    """One item of a job and where it is: queued, leased to a worker, done or failed."""

    __tablename__ = "job_items"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        UniqueConstraint("job_id", "item_id"),
        Index("ix_job_items_state", "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column()  # {text | claims, prompt?, corpus?, ...}
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    leased_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claims: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobResult(Base):
    """The result of one job item; its key is the item's, so it is written once."""

    __tablename__ = "job_results"
    __table_args__ = (Index("ix_job_results_job", "job_id", "position"),)

    item_pk: Mapped[int] = mapped_column(
        ForeignKey("job_items.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column()  # {id, check} or {id, error}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelStudioTask(Base):
    """The check last predicted for a Label Studio task, to map its annotations to claims."""

    __tablename__ = "label_studio_tasks"

    project: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    task: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    check_id: Mapped[str] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """A webhook call accepted and kept until it is processed (pending, done or failed).

    ``key`` is a digest of what the call says, so a redelivery is recognised. Leased
    like a job item: a process that dies while working on it leaves it to lease expiry.
    """

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_pending", "state", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    action: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column()
    sender: Mapped[str] = mapped_column(String(200))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """An admin action (keys, corpora, calibration): who, what, on what, when; append-only."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
