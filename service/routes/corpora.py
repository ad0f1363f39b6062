"""Corpora: create, add documents, show, search."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from retrieval.types import Document
from service.deps import AdminDep, AnyRoleDep, CheckerDep, CorporaDep, SessionDep
from service.errors import (
    BadRequestError,
    MalformedJsonError,
    NotFoundError,
    UnsupportedMediaError,
)
from service.schemas import (
    AddDocumentsOut,
    CorpusCreate,
    CorpusOut,
    DocumentIn,
    NameVersion,
    SearchHitOut,
    SearchOut,
    SpanOut,
    problem_responses,
)
from service.store import corpora as corpus_store

router = APIRouter(
    prefix="/v1/corpora",
    tags=["corpora"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 500),
)

_DOCUMENTS = TypeAdapter(list[DocumentIn])
NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
)


def parse_documents(body: bytes, content_type: str) -> list[DocumentIn]:
    """A JSON array (or ``{"documents": [...]}``) or NDJSON, one document a line."""
    media = content_type.split(";")[0].strip().lower()
    try:
        if media in NDJSON_TYPES:
            rows: Any = [
                json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()
            ]
        elif media in ("application/json", ""):
            rows = json.loads(body)
            if isinstance(rows, dict) and "documents" in rows:
                rows = rows["documents"]
        else:
            raise UnsupportedMediaError(
                f"send application/json or application/x-ndjson, not {media!r}"
            )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedJsonError(f"the documents are not valid JSON: {exc}") from exc
    try:
        documents = _DOCUMENTS.validate_python(rows)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadRequestError(
            f"invalid document at {where}: {first['msg']}", "invalid_document"
        ) from exc
    if not documents:
        raise BadRequestError("no documents in the request", "no_documents")
    return documents


def _corpus_out(db: SessionDep, name: str) -> CorpusOut:
    corpus = corpus_store.get_corpus(db, name)
    if corpus is None:
        raise NotFoundError(f"no corpus named {name!r}", "corpus_not_found")
    version = corpus_store.version_row(db, corpus, corpus.current_version)
    return CorpusOut(
        name=corpus.name,
        description=corpus.description,
        version=corpus.current_version,
        documents=corpus_store.live_document_count(db, corpus),
        passages=version.passages if version else 0,
        embedder=version.embedder if version else None,
        created_at=corpus.created_at,
        updated_at=version.created_at if version else None,
    )


@router.post("", status_code=201)
def create_corpus(body: CorpusCreate, db: SessionDep, _: AdminDep) -> CorpusOut:
    """Create an empty corpus."""
    corpus_store.create_corpus(db, body.name, body.description)
    return _corpus_out(db, body.name)


@router.get("")
def list_corpora(db: SessionDep, _: AnyRoleDep) -> list[CorpusOut]:
    """List the corpora with their current versions."""
    return [_corpus_out(db, corpus.name) for corpus in corpus_store.list_corpora(db)]


@router.get("/{name}")
def read_corpus(name: str, db: SessionDep, _: AnyRoleDep) -> CorpusOut:
    """Show a corpus: current version, documents and passages."""
    return _corpus_out(db, name)


@router.post(
    "/{name}/documents",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "minItems": 1,
                        "items": DocumentIn.model_json_schema(),
                    }
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def add_documents(
    name: str, request: Request, corpora: CorporaDep, _: AdminDep
) -> AddDocumentsOut:
    """Add or replace documents (JSON array or NDJSON); makes a new corpus version."""
    documents = parse_documents(await request.body(), request.headers.get("content-type", ""))
    sources = [Document(d.id, d.title or d.id, d.text, d.metadata) for d in documents]
    result = await run_in_threadpool(corpora.add_documents, name, sources)
    return AddDocumentsOut(**asdict(result))


@router.get("/{name}/search")
def search_corpus(
    name: str,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    checker: CheckerDep,
    _: AnyRoleDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SearchOut:
    """Search a corpus for the passages nearest to a query."""
    version, hits = checker.search(name, q, k)
    return SearchOut(
        corpus=NameVersion(name=name, version=version),
        query=q,
        results=[
            SearchHitOut(
                passage_id=h.passage.id,
                document_id=h.passage.document_id,
                title=h.passage.title,
                text=h.passage.text,
                doc_span=SpanOut(start=h.passage.start, end=h.passage.end),
                score=h.score,
            )
            for h in hits
        ],
    )
