"""Checks, claims and evidence as JSON: the one mapping between the rows and their documents.

The review export writes these documents and the import reads them back; the
API models are built from them too, from stored rows (``check_json``) or from a
fresh check that is not stored (``result_json``), so a field is mapped once.
A row made from a document (``check_row``, ``claim_row``) starts its review
life afresh: review state and version do not travel, nor, from another
database (``imported``), the id of the calibration its confidence went through.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from claims.aggregation import review_priority
from claims.types import CheckResult, ClaimResult, Reason, Span, Summary
from service.store.models import Check, Claim, Evidence


def _span(span: Span | None) -> dict[str, int] | None:
    return {"start": span.start, "end": span.end} if span else None


def reason_json(reason: Reason) -> dict[str, Any]:
    body: dict[str, Any] = {"code": reason.code, "message": reason.message}
    if reason.claim_text is not None:
        body["claim"] = {"text": reason.claim_text, "span": _span(reason.claim_span)}
    if reason.evidence_text is not None:
        body["evidence"] = {
            "text": reason.evidence_text,
            "span": _span(reason.evidence_span),
            "passage_id": reason.passage_id,
        }
    return body


def summary_json(summary: Summary) -> dict[str, Any]:
    body = asdict(summary)
    body["counts"] = {str(label): n for label, n in summary.counts.items()}
    return body


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# Rows to documents ---------------------------------------------------------------------


def evidence_json(row: Evidence) -> dict[str, Any]:
    return {
        "rank": row.rank,
        "passage_id": row.passage_id,
        "document_id": row.document_id,
        "title": row.title,
        "text": row.text,
        "span": {"start": row.span_start, "end": row.span_end},
        "doc_span": {"start": row.doc_start, "end": row.doc_end},
        "retrieval_score": row.retrieval_score,
        "similarity": row.similarity,
        "stance": row.stance,
    }


def claim_json(row: Claim) -> dict[str, Any]:
    return {
        "id": row.id,
        "check_id": row.check_id,
        "position": row.position,
        "text": row.text,
        "source_text": row.source_text,
        "spans": [{"start": int(s["start"]), "end": int(s["end"])} for s in row.spans],
        "checkworthy": row.checkworthy,
        "checkworthy_reason": row.checkworthy_reason,
        "verdict": row.verdict,
        "confidence": row.confidence,
        "scores": row.scores,
        "raw_scores": row.raw_scores,
        "reasons": row.reasons,
        "flagged": row.flagged,
        "priority": row.priority,
        "reviews_needed": row.reviews_needed,
        "review_state": row.review_state,
        "version": row.version,
        "calibration_id": row.calibration_id,
        "evidence": [evidence_json(e) for e in row.evidence],
    }


def check_json(row: Check, claims: bool = True) -> dict[str, Any]:
    """A stored check; with its claims unless ``claims`` is false."""
    body: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "text": row.text,
        "prompt": row.prompt,
        "corpus": {"name": row.corpus_name, "version": row.corpus_version},
        "verifier": {"name": row.verifier, "version": row.verifier_version},
        "extractor": row.extractor,
        "summary": row.summary,
        "warnings": row.warnings or [],
        "metadata": row.metadata_,
        "created_by": row.created_by,
        "created_at": _time(row.created_at),
    }
    if claims:
        body["claims"] = [claim_json(c) for c in row.claims]
    return body


# A fresh check to a document -----------------------------------------------------------


def _result_claim_json(result: CheckResult, position: int, claimed: ClaimResult) -> dict[str, Any]:
    verdict = claimed.verdict
    return {
        "id": result.claim_ids[position],
        "check_id": result.id,
        "position": position,
        "text": claimed.claim.text,
        "source_text": claimed.claim.source_text,
        "spans": [_span(s) for s in claimed.claim.spans],
        "checkworthy": claimed.claim.checkworthy,
        "checkworthy_reason": claimed.claim.reason,
        "verdict": str(verdict.label) if verdict else None,
        "confidence": verdict.confidence if verdict else None,
        "scores": {str(k): v for k, v in verdict.scores.items()} if verdict else {},
        "raw_scores": result.raw_scores[position] if result.raw_scores else {},
        "reasons": [reason_json(r) for r in verdict.reasons] if verdict else [],
        "flagged": claimed.flagged,
        "priority": review_priority(verdict),
        "reviews_needed": result.reviews_needed[position] if result.reviews_needed else 1,
        "review_state": "unreviewed",
        "version": 1,
        "calibration_id": result.calibration_id if verdict else None,
        "evidence": [
            {
                "rank": rank,
                "passage_id": judgement.passage.passage_id,
                "document_id": judgement.passage.document_id,
                "title": judgement.passage.title,
                "text": judgement.passage.text,
                "span": _span(judgement.span),
                "doc_span": _span(judgement.passage.doc_span),
                "retrieval_score": judgement.passage.retrieval_score,
                "similarity": judgement.similarity,
                "stance": str(judgement.stance),
            }
            for rank, judgement in enumerate(verdict.evidence if verdict else ())
        ],
    }


def result_json(
    result: CheckResult, metadata: dict[str, Any] | None = None, created_by: str | None = None
) -> dict[str, Any]:
    """A check as it will be stored (``created_at`` is set when it is)."""
    return {
        "id": result.id,
        "kind": result.kind,
        "text": result.text,
        "prompt": result.prompt,
        "corpus": {"name": result.corpus, "version": result.corpus_version},
        "verifier": {"name": result.verifier, "version": result.verifier_version},
        "extractor": result.extractor,
        "summary": summary_json(result.summary),
        "warnings": [{"code": n.code, "message": n.message} for n in result.notices],
        "metadata": metadata or {},
        "created_by": created_by,
        "created_at": None,
        "claims": [
            _result_claim_json(result, position, claimed)
            for position, claimed in enumerate(result.results)
        ],
    }


# Documents to rows ---------------------------------------------------------------------


def check_row(doc: dict[str, Any], imported: bool = False) -> Check:
    """A check row (with its claims, if the document has them), not added to any session."""
    created = doc.get("created_at")
    check = Check(
        id=doc["id"],
        kind=doc["kind"],
        text=doc["text"],
        prompt=doc["prompt"],
        corpus_name=doc["corpus"]["name"],
        corpus_version=doc["corpus"]["version"],
        extractor=doc["extractor"],
        verifier=doc["verifier"]["name"],
        verifier_version=doc["verifier"]["version"],
        summary=doc.get("summary") or {},
        warnings=doc.get("warnings") or [],
        metadata_=doc["metadata"],
        created_by=doc.get("created_by"),
        claims=[],
        **({"created_at": datetime.fromisoformat(created)} if created else {}),
    )
    # Every collection set explicitly, so a detached row never tries a lazy load.
    check.claims = [claim_row(c, doc["id"], imported) for c in doc.get("claims", [])]
    return check


def claim_row(doc: dict[str, Any], check_id: str, imported: bool = False) -> Claim:
    """A claim row with its evidence, unreviewed at version 1."""
    claim = Claim(
        id=doc["id"],
        check_id=check_id,
        position=doc["position"],
        text=doc["text"],
        source_text=doc["source_text"],
        spans=doc["spans"],
        checkworthy=doc["checkworthy"],
        checkworthy_reason=doc["checkworthy_reason"],
        verdict=doc["verdict"],
        confidence=doc["confidence"],
        scores=doc["scores"],
        raw_scores=doc.get("raw_scores") or {},
        reasons=doc["reasons"],
        flagged=doc["flagged"],
        priority=doc["priority"],
        reviews_needed=doc["reviews_needed"],
        review_state="unreviewed",
        version=1,
        calibration_id=None if imported else doc.get("calibration_id"),
    )
    claim.evidence = [
        Evidence(
            rank=e["rank"],
            passage_id=e["passage_id"],
            document_id=e["document_id"],
            title=e["title"],
            text=e["text"],
            span_start=e["span"]["start"],
            span_end=e["span"]["end"],
            doc_start=e["doc_span"]["start"],
            doc_end=e["doc_span"]["end"],
            retrieval_score=e["retrieval_score"],
            similarity=e["similarity"],
            stance=e["stance"],
        )
        for e in doc["evidence"]
    ]
    return claim
