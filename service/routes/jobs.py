"""Bulk screens as jobs: submit, follow, read results as they come, cancel, retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from service import jobs
from service.deps import PipelineDep, SessionDep, SettingsDep
from service.errors import BadRequestError, MalformedJsonError, UnsupportedMediaError
from service.routes.corpora import NDJSON_TYPES
from service.schemas import (
    CORPUS_NAME,
    JobCreate,
    JobOut,
    JobSummaryOut,
    job_result_line,
    problem_responses,
)
from service.settings import Settings
from service.store import jobs as job_store
from service.store.models import utcnow

router = APIRouter(
    prefix="/v1",
    tags=["jobs"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 500),
)


def _submission(
    body: bytes,
    content_type: str,
    corpus: str | None,
    top_k: int | None,
    callback_url: str | None,
    settings: Settings,
) -> jobs.Submission:
    """A JSON job or NDJSON items, every item checked (a bad one is a 422 naming it)."""
    media = content_type.split(";")[0].strip().lower()
    try:
        if media in NDJSON_TYPES:
            rows: list[Any] = []
            for number, line in enumerate(body.decode("utf-8").split("\n"), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise MalformedJsonError(
                            f"line {number} is not valid JSON: {exc.msg}"
                        ) from exc
            items = jobs.read_items(
                rows, corpus, settings.max_text_chars, settings.max_job_items, "line"
            )
            return _with_callback(jobs.Submission(items, corpus, top_k), callback_url, settings)
        if media not in ("application/json", ""):
            raise UnsupportedMediaError(
                f"send application/json or application/x-ndjson, not {media!r}"
            )
        job = JobCreate.model_validate_json(body)
    except UnicodeDecodeError as exc:
        raise MalformedJsonError(f"the body is not UTF-8: {exc}") from exc
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise MalformedJsonError(
                f"the body is not valid JSON: {exc.errors()[0]['msg']}"
            ) from exc
        raise
    corpus = job.corpus or corpus
    items = jobs.read_items(
        job.items, corpus, settings.max_text_chars, settings.max_job_items, "item"
    )
    callback = job.callback_url or callback_url
    submission = jobs.Submission(items, corpus, job.options.top_k or top_k, job.metadata)
    return _with_callback(submission, callback, settings)


def _with_callback(
    submission: jobs.Submission, url: str | None, settings: Settings
) -> jobs.Submission:
    if url is None:
        return submission
    if settings.callback_secret is None:
        raise BadRequestError(
            "this service sends no callbacks: its admin sets CLAIMSIEVE_CALLBACK_SECRET to sign "
            "them",
            "callbacks_off",
        )
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise BadRequestError("callback_url is an http(s) URL of at most 2000 characters")
    return replace(submission, callback_url=url)


@router.post(
    "/jobs",
    status_code=201,
    responses={200: {"description": "The job this Idempotency-Key was used for"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            }
        }
    },
)
async def create_job(
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    principal: PipelineDep,
    corpus: Annotated[str | None, Query(pattern=CORPUS_NAME)] = None,
    top_k: Annotated[int | None, Query(ge=1, le=50)] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    callback_url: Annotated[
        str | None, Query(max_length=2000, description="For NDJSON bodies: see JobCreate")
    ] = None,
) -> JobOut:
    """Queue items to be checked; the same Idempotency-Key and body give back the same job."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    submission = await run_in_threadpool(
        _submission, body, content_type, corpus, top_k, callback_url, settings
    )
    job, created = await run_in_threadpool(
        jobs.submit, db, submission, principal.name, idempotency_key
    )
    if not created:
        response.status_code = 200
    return JobOut.from_row(job, job_store.progress(db, job.id))


@router.get("/jobs")
def list_jobs(
    db: SessionDep,
    _: PipelineDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=40)] = None,
) -> list[JobOut]:
    """Jobs, newest first; ``before`` (a job id) gives the page after it."""
    return [
        JobOut.from_row(job, job_store.progress(db, job.id))
        for job in job_store.list_jobs(db, limit, before)
    ]


@router.get("/jobs/{job_id}")
def read_job(job_id: str, db: SessionDep, _: PipelineDep) -> JobOut:
    """A job's progress: items by state, claims checked, claims/s and the time left."""
    job = job_store.get_job(db, job_id)
    return JobOut.from_row(job, job_store.progress(db, job_id))


@router.get(
    "/jobs/{job_id}/results",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines"}},
)
def job_results(
    job_id: str,
    db: SessionDep,
    _: PipelineDep,
    after: Annotated[int, Query(ge=-1, description="The position of the last line read")] = -1,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> StreamingResponse:
    """The results finished so far, in item order: ``{id, position, check | error}`` lines."""
    job_store.get_job(db, job_id)
    rows = job_store.results(db, job_id, after, limit)

    def lines() -> Iterator[str]:
        for row in rows:
            yield job_result_line(row.body, row.position) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, db: SessionDep, _: PipelineDep) -> JobOut:
    """Stop a job: the items not finished are cancelled; results so far are kept."""
    job = job_store.cancel_job(db, job_id)
    return JobOut.from_row(job, job_store.progress(db, job_id))


@router.post("/jobs/{job_id}/retry")
def retry_job(job_id: str, db: SessionDep, _: PipelineDep) -> JobOut:
    """Queue the failed items of a job again."""
    job_store.retry_failed(db, job_id)
    job = job_store.get_job(db, job_id)
    return JobOut.from_row(job, job_store.progress(db, job_id))


@router.get("/jobs/{job_id}/summary")
def job_summary(job_id: str, db: SessionDep, _: PipelineDep) -> JobSummaryOut:
    """What a job found so far: items, failures, claims, verdicts, the flagged share."""
    job = job_store.get_job(db, job_id)
    seconds = None
    if job.started_at is not None:
        seconds = round(((job.finished_at or utcnow()) - job.started_at).total_seconds(), 1)
    return JobSummaryOut(**jobs.tally(db, job_id).summary(), seconds=seconds)


@router.get(
    "/jobs/{job_id}/factuality.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "A histogram"}},
)
def job_factuality(job_id: str, db: SessionDep, _: PipelineDep) -> Response:
    """A histogram of the job's per-response factuality (share of supported claims)."""
    job_store.get_job(db, job_id)
    picture = jobs.tally(db, job_id).histogram()
    return Response(picture, media_type="image/png")
