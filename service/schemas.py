"""Request and response models of the HTTP API (v1)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from claims.types import CheckResult, Label
from service.pipeline import Ranking
from service.store.exchange import check_json, claim_json, result_json
from service.store.jobs import Progress
from service.store.models import Calibration as CalibrationRow
from service.store.models import Check, Claim, Job, Review

Role = Literal["admin", "trainer", "pipeline"]
CORPUS_NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"


class Problem(BaseModel):
    """The body of every error (RFC 9457), served as application/problem+json."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code.")
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors, if any.")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting problem+json answers for ``statuses``, and for the 429
    and 503 that admission control (``service.admission``) may give any route."""
    return {
        status: {
            "description": "Problem",
            "model": Problem,
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        for status in sorted({*statuses, 429, 503})
    }


class Strict(BaseModel):
    """Request bodies: unknown fields and type coercion ("store": 0) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CheckOptions(Strict):
    top_k: int | None = Field(None, ge=1, le=50, description="Evidence passages per claim.")
    timings: bool = Field(
        False, description="Answer with the milliseconds each stage of the check took."
    )


class CheckRequest(Strict):
    text: str = Field(min_length=1, description="The model response to check.")
    prompt: str | None = Field(None, description="The prompt that produced the response.")
    corpus: str | None = Field(None, description="Corpus name; default: the service's default.")
    options: CheckOptions = Field(default_factory=CheckOptions)
    metadata: dict[str, Any] = Field(default_factory=dict)
    store: bool = Field(True, description="Keep the check so it can be read and reviewed later.")


class VerifyRequest(Strict):
    claims: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="Claims to verify as they are."
    )
    corpus: str | None = None
    options: CheckOptions = Field(default_factory=CheckOptions)
    metadata: dict[str, Any] = Field(default_factory=dict)
    store: bool = True


class RankRequest(Strict):
    prompt: str = Field(min_length=1, description="The prompt the responses answer.")
    responses: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=2, max_length=16, description="Candidate responses, 2 to 16."
    )
    corpus: str | None = None
    options: CheckOptions = Field(default_factory=CheckOptions)


class SpanOut(BaseModel):
    start: int
    end: int


class NameVersion(BaseModel):
    name: str
    version: int | str


class EvidenceOut(BaseModel):
    passage_id: str
    document_id: str
    title: str
    text: str
    span: SpanOut = Field(description="The evidence sentence that decided, within `text`.")
    doc_span: SpanOut = Field(description="Where `text` sits in its document.")
    retrieval_score: float
    similarity: float
    stance: Literal["supports", "refutes", "neutral"]


class ClaimOut(BaseModel):
    id: str
    check_id: str
    text: str
    source_text: str
    spans: list[SpanOut] = Field(description="Response spans the claim comes from.")
    checkworthy: bool
    checkworthy_reason: str | None
    verdict: Label | None
    confidence: float | None
    scores: dict[str, float]
    flagged: bool
    review_state: str
    version: int
    priority: float = Field(description="Review-queue order: severity, then uncertainty.")
    calibration_id: int | None = Field(description="The calibration the confidence went through.")
    reasons: list[dict[str, Any]]
    evidence: list[EvidenceOut]

    @classmethod
    def from_row(cls, row: Claim) -> ClaimOut:
        return cls.model_validate(claim_json(row))


class WarningOut(BaseModel):
    code: str = Field(description="Stable code, e.g. llm_fallback, language.")
    message: str


class CheckOut(BaseModel):
    id: str
    kind: Literal["check", "verify"]
    stored: bool
    corpus: NameVersion
    verifier: NameVersion
    extractor: str | None
    text: str | None
    prompt: str | None
    claims: list[ClaimOut]
    summary: dict[str, Any]
    warnings: list[WarningOut] = Field(
        description="How the result was made, when the caller should know (e.g. a fallback)."
    )
    metadata: dict[str, Any]
    created_at: datetime | None
    timings: dict[str, float] | None = Field(
        None,
        description="Milliseconds per stage (extraction, embedding, search, verification and "
        "its parts, aggregation, store, total), with options.timings.",
    )

    def timed(self, result: CheckResult) -> CheckOut:
        """This answer with the stage times of the check that made it."""
        ms = {name: round(seconds * 1000, 2) for name, seconds in result.timings.items()}
        return self.model_copy(update={"timings": ms})

    @classmethod
    def from_row(cls, row: Check) -> CheckOut:
        """A stored check."""
        return cls.model_validate({**check_json(row), "stored": True})

    @classmethod
    def from_result(cls, result: CheckResult, metadata: dict[str, Any] | None = None) -> CheckOut:
        """A check that was not stored (no rows are made for it)."""
        return cls.model_validate({**result_json(result, metadata), "stored": False})


class RankedOut(BaseModel):
    index: int = Field(description="The response's place in the request.")
    text: str
    score: float = Field(
        description="Share of checkworthy claims SUPPORTED less the REFUTED ones weighted "
        "by confidence (-1 to 1)."
    )
    supported: float
    refuted: float
    not_enough_info: float
    check: CheckOut


class PreferencePairOut(BaseModel):
    prompt: str
    chosen: str
    rejected: str
    margin: float = Field(description="Score of chosen less score of rejected.")


class RankOut(BaseModel):
    prompt: str
    ranked: list[RankedOut] = Field(description="Most factual first.")
    pairs: list[PreferencePairOut] = Field(
        description="Every two responses whose scores differ, the better as chosen (DPO)."
    )

    @classmethod
    def from_ranking(cls, ranking: Ranking) -> RankOut:
        texts = ranking.responses
        return cls(
            prompt=ranking.prompt,
            ranked=[
                RankedOut(
                    index=s.index,
                    text=texts[s.index],
                    score=round(s.score, 4),
                    supported=round(s.supported, 4),
                    refuted=round(s.refuted, 4),
                    not_enough_info=round(s.unknown, 4),
                    check=CheckOut.from_result(ranking.results[s.index]),
                )
                for s in ranking.ranked
            ],
            pairs=[
                PreferencePairOut(
                    prompt=ranking.prompt,
                    chosen=texts[chosen.index],
                    rejected=texts[rejected.index],
                    margin=round(margin, 4),
                )
                for chosen, rejected, margin in ranking.pairs
            ],
        )


class JobOptions(Strict):
    top_k: int | None = Field(None, ge=1, le=50, description="Evidence passages per claim.")


class JobCreate(Strict):
    items: list[dict[str, Any]] = Field(
        min_length=1,
        description="Items {id, text | claims, prompt?, corpus?, metadata?}; or send them as "
        "application/x-ndjson, one a line, with corpus and top_k as query parameters.",
    )
    corpus: str | None = Field(None, description="Corpus of the items that name none.")
    options: JobOptions = Field(default_factory=JobOptions)
    metadata: dict[str, Any] = Field(default_factory=dict)
    callback_url: str | None = Field(
        None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="POSTed a signed summary when the job ends (needs CLAIMSIEVE_CALLBACK_SECRET)",
    )


class JobCounts(BaseModel):
    queued: int
    leased: int
    done: int
    failed: int
    cancelled: int


class JobProgress(BaseModel):
    stage: str = Field(description="queued, indexing (documents read so far), done.")
    done: int = Field(description="Documents read.")
    total: int = Field(description="Documents to read (0 for a rebuild that reads none).")


class JobOut(BaseModel):
    id: str
    kind: Literal["check", "corpus"] = Field(
        description="check: items checked; corpus: one corpus change (a large upload or a "
        "rebuild), its result the change."
    )
    status: Literal["queued", "running", "done", "cancelled"]
    progress: JobProgress | None = Field(description="How far a corpus change has got.")
    corpus: str | None
    top_k: int | None
    items: int
    counts: JobCounts
    claims: int = Field(description="Claims checked so far.")
    claims_per_s: float | None = Field(description="Since the first item finished.")
    eta_s: float | None = Field(description="Seconds left at the rate so far.")
    metadata: dict[str, Any]
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, job: Job, progress: Progress) -> JobOut:
        states = progress.states
        finished = states["done"] + states["failed"]
        left = states["queued"] + states["leased"]
        rate = eta = None
        if progress.first_finished and progress.last_finished and finished > 1:
            seconds = (progress.last_finished - progress.first_finished).total_seconds()
            if seconds > 0:
                rate = progress.claims / seconds
                eta = left * seconds / (finished - 1)
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            progress=JobProgress(**job.progress) if job.progress else None,
            corpus=job.corpus,
            top_k=job.top_k,
            items=job.items,
            counts=JobCounts(**states),
            claims=progress.claims,
            claims_per_s=round(rate, 2) if rate is not None else None,
            eta_s=round(eta, 1) if eta is not None else None,
            metadata=job.metadata_,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class JobSummaryOut(BaseModel):
    items: int = Field(description="Items finished.")
    failed: int
    claims: int
    verdicts: dict[str, int]
    flagged_share: float | None
    seconds: float | None = Field(description="From the first lease to the end (or now).")


def job_result(body: dict[str, Any]) -> dict[str, Any]:
    """A result row as the API gives it: ``{id, check}`` (a check's answer, not stored) or
    ``{id, error}``; from a job's stored row or ``claimsieve screen``."""
    if "check" not in body:
        return body
    check = CheckOut.model_validate({**body["check"], "stored": False})
    return {"id": body["id"], "check": check.model_dump(mode="json")}


def job_result_line(body: dict[str, Any], position: int) -> str:
    """One NDJSON line of a job's results: ``{id, position, check | error}``."""
    row = job_result(body)
    return json.dumps({"id": row["id"], "position": position, **row}, ensure_ascii=False)


class CorpusCreate(Strict):
    name: str = Field(pattern=CORPUS_NAME, description="Lower-case letters, digits, _ . -")
    description: str = ""


class DocumentIn(Strict):
    id: str = Field(min_length=1, max_length=500)
    title: str | None = None
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class CorpusOut(BaseModel):
    name: str
    description: str
    version: int
    documents: int
    passages: int = Field(description="Live passages.")
    tombstones: int = Field(description="Passages of deleted documents, until a rebuild.")
    dense_index: str = Field(description="flat, hnsw, ivf or ivfpq.")
    embedder: str | None
    created_at: datetime
    updated_at: datetime | None


class ChangeOut(BaseModel):
    corpus: str
    version: int = Field(description="The version after the change (unchanged if nothing changed).")
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    passages: int
    documents: int
    not_found: list[str] = Field(default_factory=list, description="Ids asked for but absent.")


class VersionOut(BaseModel):
    version: int
    documents: int
    passages: int
    embedder: str
    current: bool
    available: bool = Field(description="Its snapshot is still on disk (older ones are pruned).")
    created_at: datetime


class DocumentSummaryOut(BaseModel):
    id: str
    title: str
    metadata: dict[str, Any]
    chars: int = Field(description="Length of its text.")
    passages: int = Field(description="Passages it was cut into.")


class DocumentListOut(BaseModel):
    corpus: NameVersion
    total: int = Field(description="Live documents in this version.")
    offset: int
    documents: list[DocumentSummaryOut] = Field(description="In the order they were added.")


class DocumentOut(BaseModel):
    corpus: NameVersion
    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    passages: list[SpanOut] = Field(description="Each passage's span within `text`.")


class SearchHitOut(BaseModel):
    passage_id: str
    document_id: str
    title: str
    text: str
    doc_span: SpanOut
    score: float = Field(
        description="hybrid: the reciprocal-rank-fusion score; dense: cosine; sparse: BM25; "
        "the reranker's score when one is configured (CLAIMSIEVE_RERANKER_PATH)."
    )


class SearchOut(BaseModel):
    corpus: NameVersion
    query: str
    mode: Literal["hybrid", "dense", "sparse"]
    results: list[SearchHitOut]


class KeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200, description="Who acts with the key.")
    role: Role
    expires_in_days: float | None = Field(
        None, gt=0, le=3650, description="The key stops working this many days from now."
    )


class KeyOut(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself. Shown once; only its hash is stored.")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class ReviewCreate(Strict):
    action: Literal["confirm", "correct"]
    label: Label | None = Field(
        None, strict=False, description="Required to correct; confirm keeps the verdict."
    )
    corrected_text: str | None = Field(None, min_length=1, max_length=5_000)
    evidence_ids: list[Annotated[str, Field(min_length=1, max_length=600)]] = Field(
        default_factory=list,
        max_length=50,
        description="Passages that decide (also ones retrieval missed).",
    )
    note: str | None = Field(None, max_length=5_000)
    expected_version: int = Field(ge=1, description="The claim version the trainer saw.")


class ReviewOut(BaseModel):
    id: int
    claim_id: str
    reviewer: str
    action: str
    label: str
    corrected_text: str | None
    evidence_ids: list[str]
    note: str | None
    claim_version: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: Review) -> ReviewOut:
        return cls(
            id=row.id,
            claim_id=row.claim_id,
            reviewer=row.reviewer,
            action=row.action,
            label=row.label,
            corrected_text=row.corrected_text,
            evidence_ids=list(row.evidence_ids),
            note=row.note,
            claim_version=row.claim_version,
            created_at=row.created_at,
        )


class ReviewResultOut(BaseModel):
    review: ReviewOut
    claim_version: int
    review_state: str


class QueueItemOut(BaseModel):
    claim: ClaimOut
    check_text: str | None
    prompt: str | None
    corpus: str
    priority: float
    reviews_needed: int
    lease_expires_at: datetime


class QueueOut(BaseModel):
    items: list[QueueItemOut]
    next_cursor: str | None


class CalibrationCreate(Strict):
    corpus: str = Field(pattern=CORPUS_NAME)
    method: Literal["auto", "temperature", "isotonic"] = Field(
        "auto", description="auto: the lowest cross-validated ECE on the fitting part."
    )
    holdout: float = Field(0.5, gt=0.0, lt=1.0, description="Share of reviews kept out of the fit.")


class CalibrationOut(BaseModel):
    id: int
    corpus: str
    version: int
    method: str
    params: dict[str, Any]
    fitted_on: int
    held_out: int
    ece_before: float | None
    ece_after: float | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: CalibrationRow) -> CalibrationOut:
        return cls(
            id=row.id,
            corpus=row.corpus_name,
            version=row.version,
            method=row.method,
            params=row.params,
            fitted_on=row.fitted_on,
            held_out=row.held_out,
            ece_before=row.ece_before,
            ece_after=row.ece_after,
            created_at=row.created_at,
        )


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="The name of the key that acted (cli:<user> from the CLI).")
    action: str = Field(description="e.g. key.create, key.rotate, corpus.documents.add")
    target: str
    details: dict[str, Any]
