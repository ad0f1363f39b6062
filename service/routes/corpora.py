"""Corpora: create, add documents, show, search."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from retrieval import snapshots
from retrieval.errors import IngestError
from retrieval.ingest import read_upload
from retrieval.snapshots import Snapshot
from retrieval.types import Document
from service import jobs
from service.auth import Principal
from service.corpora import ChangeResult
from service.deps import (
    AdminDep,
    AnyRoleDep,
    CheckerDep,
    CorporaDep,
    SessionDep,
    SettingsDep,
    audit,
)
from service.errors import (
    BadRequestError,
    MalformedJsonError,
    NotFoundError,
    UnsupportedMediaError,
)
from service.schemas import (
    ChangeOut,
    CorpusCreate,
    CorpusOut,
    DocumentIn,
    DocumentListOut,
    DocumentOut,
    DocumentSummaryOut,
    JobOut,
    NameVersion,
    SearchHitOut,
    SearchOut,
    SpanOut,
    VersionOut,
    problem_responses,
)
from service.store import corpora as corpus_store
from service.store import jobs as job_store

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
                json.loads(line) for line in body.decode("utf-8").split("\n") if line.strip()
            ]
        elif media in ("application/json", ""):
            rows = json.loads(body)
            if isinstance(rows, dict) and "documents" in rows:
                rows = rows["documents"]
        else:
            raise UnsupportedMediaError(
                f"send application/json, application/x-ndjson or multipart/form-data files, "
                f"not {media!r}"
            )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedJsonError(f"the documents are not valid JSON: {exc}") from exc
    return _validated(rows)


async def read_uploads(request: Request) -> list[DocumentIn]:
    """Documents from the files of a ``multipart/form-data`` body, read by their names.

    A ``.jsonl``/``.ndjson`` file gives its rows; a ``.txt``, ``.md`` or ``.html``
    file one document whose id is its file name (as ``claimsieve corpus add`` reads
    a named file).
    """
    rows: list[dict[str, Any]] = []
    async with request.form() as form:
        for field, value in form.multi_items():
            if not isinstance(value, UploadFile):
                raise BadRequestError(
                    f"form field {field!r} is not a file: upload documents as files "
                    f"(curl -F file=@handbook.md)",
                    "invalid_document",
                )
            try:
                data = await value.read()
                documents = await run_in_threadpool(read_upload, value.filename or "", data)
            except IngestError as exc:
                raise BadRequestError(str(exc), "invalid_document") from exc
            rows += [asdict(d) for d in documents]
    return _validated(rows)


def _validated(rows: Any) -> list[DocumentIn]:
    """Every document checked before anything is indexed: one bad document changes nothing."""
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
    counts = Counter(d.id for d in documents)
    repeated = sorted(i for i, n in counts.items() if n > 1)
    if repeated:
        raise BadRequestError(
            f"document ids repeat in one request: {repeated[:5]}", "duplicate_document_id"
        )
    return documents


def _snapshot(corpora: CorporaDep, name: str) -> Snapshot:
    snapshot = corpora.current(name)
    if snapshot is None:
        raise NotFoundError(f"no corpus named {name!r}", "corpus_not_found")
    return snapshot


def _corpus_out(db: SessionDep, corpora: CorporaDep, name: str) -> CorpusOut:
    corpus = corpus_store.get_corpus(db, name)
    snapshot = corpora.current(name)
    if corpus is None or snapshot is None:
        raise NotFoundError(f"no corpus named {name!r}", "corpus_not_found")
    version = corpus_store.version_row(db, corpus, corpus.current_version)
    return CorpusOut(
        name=corpus.name,
        description=corpus.description,
        version=snapshot.version,
        documents=snapshot.manifest.documents,
        passages=len(snapshot),
        tombstones=len(snapshot.tombstones),
        dense_index=snapshot.manifest.dense,
        embedder=version.embedder if version else None,
        created_at=corpus.created_at,
        updated_at=version.created_at if version else None,
    )


def _change_out(result: ChangeResult) -> ChangeOut:
    return ChangeOut(**asdict(result))


@router.post("", status_code=201)
def create_corpus(
    body: CorpusCreate, request: Request, db: SessionDep, corpora: CorporaDep, principal: AdminDep
) -> CorpusOut:
    """Create an empty corpus."""
    corpus_store.create_corpus(db, body.name, body.description)
    audit(request, principal, "corpus.create", f"corpus {body.name}")
    return _corpus_out(db, corpora, body.name)


@router.get("")
def list_corpora(db: SessionDep, corpora: CorporaDep, _: AnyRoleDep) -> list[CorpusOut]:
    """List the corpora with their current versions."""
    return [_corpus_out(db, corpora, c.name) for c in corpus_store.list_corpora(db)]


@router.get("/{name}")
def read_corpus(name: str, db: SessionDep, corpora: CorporaDep, _: AnyRoleDep) -> CorpusOut:
    """Show a corpus: current version, documents, passages, tombstones, index kind."""
    return _corpus_out(db, corpora, name)


@router.get("/{name}/versions")
def list_versions(
    name: str, db: SessionDep, corpora: CorporaDep, _: AnyRoleDep
) -> list[VersionOut]:
    """Every version of a corpus, oldest first."""
    corpus = corpus_store.get_corpus(db, name)
    if corpus is None:
        raise NotFoundError(f"no corpus named {name!r}", "corpus_not_found")
    return [
        VersionOut(
            version=v.version,
            documents=v.documents,
            passages=v.passages,
            embedder=v.embedder,
            current=v.version == corpus.current_version,
            available=corpora.available(v.snapshot_path),
            created_at=v.created_at,
        )
        for v in corpus_store.list_versions(db, corpus)
    ]


_QUEUED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": JobOut,
        "description": "Too large to make inside the request (or background=true): queued as "
        "a corpus job; follow it at the Location given (/v1/jobs/{id}).",
    }
}
_BACKGROUND = Query(description="Queue the change as a job whatever its size (202).")


def _queued(
    db: SessionDep,
    settings: SettingsDep,
    name: str,
    documents: list[Document] | None,
    principal: Principal,
    reembed: bool = False,
    total: int = 0,
) -> JSONResponse:
    """The change queued as a corpus job: 202, the job, and where to follow it."""
    if corpus_store.get_corpus(db, name) is None:
        raise NotFoundError(f"no corpus named {name!r}", "corpus_not_found")
    uploads = settings.data_dir / "uploads"
    job = jobs.submit_change(db, uploads, name, documents, principal.name, reembed, total)
    out = JobOut.from_row(job, job_store.progress(db, job.id))
    location = {"Location": f"/v1/jobs/{job.id}"}
    return JSONResponse(out.model_dump(mode="json"), status_code=202, headers=location)


@router.post(
    "/{name}/documents",
    status_code=201,
    responses={
        200: {"description": "Nothing changed: every document was already there"},
        **_QUEUED,
    },
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
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": ".jsonl, .ndjson, .txt, .md or .html files",
                            }
                        },
                    }
                },
            },
        }
    },
)
async def add_documents(
    name: str,
    request: Request,
    response: Response,
    corpora: CorporaDep,
    db: SessionDep,
    settings: SettingsDep,
    principal: AdminDep,
    background: Annotated[bool, _BACKGROUND] = False,
) -> Any:
    """Add or replace documents (JSON array, NDJSON or uploaded files); makes a new version.

    Every document is validated before anything is indexed: one bad document
    changes nothing. More than ``CLAIMSIEVE_CORPUS_JOB_DOCUMENTS`` documents (or
    ``background=true``) are kept and queued as a corpus job: 202 with the job.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        documents = await read_uploads(request)
    else:
        body = await request.body()
        # Parsing a large body takes seconds: off the event loop, so other requests go on.
        documents = await run_in_threadpool(parse_documents, body, content_type)
    sources = [Document(d.id, d.title or d.id, d.text, d.metadata) for d in documents]
    if background or len(sources) > settings.corpus_job_documents:
        queued = await run_in_threadpool(_queued, db, settings, name, sources, principal)
        details = {"documents": len(sources), "job": queued.headers["Location"]}
        await run_in_threadpool(
            audit, request, principal, "corpus.documents.add", f"corpus {name}", details
        )
        return queued
    result = await run_in_threadpool(corpora.add_documents, name, sources)
    if not (result.added or result.replaced):
        response.status_code = 200
    changed = _change_out(result)
    await run_in_threadpool(
        audit, request, principal, "corpus.documents.add", f"corpus {name}", changed.model_dump()
    )
    return changed


@router.get("/{name}/documents")
def list_documents(
    name: str,
    corpora: CorporaDep,
    _: AnyRoleDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentListOut:
    """The live documents of the current version, in the order they were added, a page at a time.

    ``total`` and ``corpus.version`` say what was paged: a change in between makes a new version.
    """
    snapshot = _snapshot(corpora, name)
    page = itertools.islice(snapshots.documents(snapshot, skip=offset), limit)
    return DocumentListOut(
        corpus=NameVersion(name=name, version=snapshot.version),
        total=snapshot.manifest.documents,
        offset=offset,
        documents=[
            DocumentSummaryOut(
                id=d.id,
                title=d.title,
                metadata=d.metadata,
                chars=len(d.text),
                passages=len(d.rows),
            )
            for d in page
        ],
    )


@router.get("/{name}/documents/{document_id:path}")
def read_document(name: str, document_id: str, corpora: CorporaDep, _: AnyRoleDep) -> DocumentOut:
    """One live document of the current version: its text, metadata and passage spans."""
    snapshot = _snapshot(corpora, name)
    found = snapshots.find_document(snapshot, document_id)
    if found is None:
        raise NotFoundError(
            f"corpus {name!r} has no document {document_id!r}", "document_not_found"
        )
    return DocumentOut(
        corpus=NameVersion(name=name, version=snapshot.version),
        id=found.id,
        title=found.title,
        text=found.text,
        metadata=found.metadata,
        passages=[SpanOut(start=s, end=e) for _, s, e in sorted(found.rows, key=lambda r: r[1])],
    )


@router.delete("/{name}/documents/{document_id:path}")
def delete_document(
    name: str, document_id: str, request: Request, corpora: CorporaDep, principal: AdminDep
) -> ChangeOut:
    """Delete a document: a new version in which its passages are tombstones."""
    result = corpora.delete_documents(name, [document_id])
    if result.not_found:
        raise NotFoundError(
            f"corpus {name!r} has no document {document_id!r}", "document_not_found"
        )
    audit(request, principal, "corpus.documents.delete", f"corpus {name}", {"id": document_id})
    return _change_out(result)


@router.post("/{name}/rebuild", status_code=201, responses=_QUEUED)
async def rebuild_corpus(
    name: str,
    request: Request,
    corpora: CorporaDep,
    db: SessionDep,
    settings: SettingsDep,
    principal: AdminDep,
    reembed: bool = False,
    background: Annotated[bool, _BACKGROUND] = False,
) -> Any:
    """A new version without tombstones, its dense and sparse indexes built afresh.

    With ``reembed=true`` every document is encoded again by this service's embedder
    (for a corpus made by another one, which searches refuse with 409 ``embedder_mismatch``).
    A corpus of more than ``CLAIMSIEVE_CORPUS_JOB_DOCUMENTS`` documents (or
    ``background=true``) is rebuilt by a corpus job: 202 with the job.
    """
    held = _snapshot(corpora, name).manifest.documents
    if background or held > settings.corpus_job_documents:
        total = held if reembed else 0
        queued = await run_in_threadpool(
            _queued, db, settings, name, None, principal, reembed, total
        )
        details = {"reembed": reembed, "job": queued.headers["Location"]}
        await run_in_threadpool(
            audit, request, principal, "corpus.rebuild", f"corpus {name}", details
        )
        return queued
    changed = _change_out(await run_in_threadpool(corpora.rebuild, name, reembed=reembed))
    details = {"reembed": reembed, "version": changed.version}
    await run_in_threadpool(audit, request, principal, "corpus.rebuild", f"corpus {name}", details)
    return changed


@router.get("/{name}/search")
def search_corpus(
    name: str,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    checker: CheckerDep,
    _: AnyRoleDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    mode: Annotated[Literal["hybrid", "dense", "sparse"] | None, Query()] = None,
) -> SearchOut:
    """Search a corpus: hybrid (dense and BM25 fused, the default), dense or sparse."""
    version, hits = checker.search(name, q, k, mode)
    return SearchOut(
        corpus=NameVersion(name=name, version=version),
        query=q,
        mode=mode or checker.mode,
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
