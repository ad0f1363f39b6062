"""Domain types shared by extraction, verification and aggregation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from retrieval.types import Hit


class Label(StrEnum):
    SUPPORTED = "SUPPORTED"
    REFUTED = "REFUTED"
    NOT_ENOUGH_INFO = "NOT_ENOUGH_INFO"


class Stance(StrEnum):
    SUPPORTS = "supports"
    REFUTES = "refutes"
    NEUTRAL = "neutral"


@dataclass(frozen=True, order=True)
class Span:
    """Half-open character range ``[start, end)`` into some text (Python string indices)."""

    start: int
    end: int

    def slice(self, text: str) -> str:
        return text[self.start : self.end]


@dataclass(frozen=True)
class Claim:
    """One checkable statement taken from a response.

    Attributes:
        text: The claim as it is verified (decontextualised where possible).
        source_text: The response text the claim came from (its spans joined by spaces).
        spans: Where the claim sits in the response; may be several pieces.
        checkworthy: False for questions, greetings, instructions and the like.
        reason: Why a claim is not check-worthy (a stable code), else ``None``.
    """

    text: str
    source_text: str
    spans: tuple[Span, ...]
    checkworthy: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class Notice:
    """Something the caller should know about how a result was made (e.g. a fallback)."""

    code: str
    message: str


@dataclass(frozen=True)
class Passage:
    """A piece of evidence handed to a verifier, with where it came from.

    ``sentences`` (spans into ``text``) and their ``sentence_vectors`` may come
    precomputed from the index; a verifier splits and encodes when they do not.
    """

    passage_id: str
    document_id: str
    title: str
    text: str
    doc_span: Span
    retrieval_score: float = 0.0
    sentences: tuple[Span, ...] = ()
    sentence_vectors: NDArray[np.float32] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Reason:
    """Why a verdict came out as it did, with the pieces of text that show it.

    ``claim_span`` indexes the claim text; ``evidence_span`` indexes the passage
    text of ``passage_id``.
    """

    code: str
    message: str
    claim_text: str | None = None
    claim_span: Span | None = None
    evidence_text: str | None = None
    evidence_span: Span | None = None
    passage_id: str | None = None


@dataclass(frozen=True)
class EvidenceJudgement:
    """A passage as the verifier read it: its best-aligned sentence and its stance."""

    passage: Passage
    span: Span
    stance: Stance
    similarity: float


@dataclass(frozen=True)
class Verdict:
    label: Label
    confidence: float
    scores: dict[Label, float]
    reasons: tuple[Reason, ...]
    evidence: tuple[EvidenceJudgement, ...]


@dataclass(frozen=True)
class ClaimResult:
    """A claim with its verdict; ``verdict`` is ``None`` for claims not checked."""

    claim: Claim
    verdict: Verdict | None
    flagged: bool


@dataclass(frozen=True)
class Summary:
    claims: int
    checkworthy: int
    not_checkworthy: int
    counts: dict[Label, int] = field(default_factory=dict)
    flagged: int = 0
    factuality: float | None = None


@dataclass(frozen=True)
class CheckResult:
    """Everything one check produced, before it is stored or served."""

    id: str
    kind: str  # "check" (a response split into claims) or "verify" (claims given)
    text: str | None
    prompt: str | None
    corpus: str
    corpus_version: int
    extractor: str | None
    verifier: str
    verifier_version: str
    results: list[ClaimResult]
    claim_ids: list[str]
    summary: Summary
    notices: tuple[Notice, ...] = ()
    raw_scores: list[dict[str, float]] = field(default_factory=list)  # before calibration
    calibration_id: int | None = None
    reviews_needed: list[int] = field(default_factory=list)
    # Seconds per stage (claims.timing), filled while the check runs and is stored.
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def new_id(prefix: str) -> str:
    """A fresh id for a check (``chk``) or a claim (``clm``)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def as_passage(hit: Hit) -> Passage:
    """A retrieved passage as a verifier reads it (its sentences and their vectors kept)."""
    p = hit.passage
    return Passage(
        p.id,
        p.document_id,
        p.title,
        p.text,
        Span(p.start, p.end),
        hit.score,
        sentences=tuple(Span(start, end) for start, end in p.sentences),
        sentence_vectors=hit.sentence_vectors,
    )
