"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """Answer while the process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request) -> JSONResponse:
    """Answer 200 when the database and the default corpus are usable."""
    checks: dict[str, str] = {}
    try:
        with request.app.state.sessions() as db:
            db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports any failure instead of raising it
        checks["database"] = f"error: {type(exc).__name__}"
    checker = getattr(request.app.state, "checker", None)
    try:
        snapshot = checker.corpora.searchable(checker.default_corpus) if checker else None
        checks["corpus"] = f"ok (version {snapshot.version})" if snapshot else "missing"
    except Exception as exc:
        checks["corpus"] = f"error: {type(exc).__name__}"
    ready = all(value.startswith("ok") for value in checks.values())
    health = Health(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(health.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Return Prometheus metrics (requests by route and status, latency, verdicts)."""
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
