"""The FastAPI application factory."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retrieval.embedders import Embedder
from service import components
from service.admission import Admission, TimeLimit
from service.errors import install_error_handlers, problem
from service.integrations.label_studio import DeliveryWorker
from service.jobs import Worker, callbacks
from service.metrics import Metrics, MetricsMiddleware
from service.routes import (
    audit,
    checks,
    corpora,
    health,
    jobs,
    keys,
    label_studio,
    reviews,
    ui,
)
from service.settings import Settings, get_settings, is_loopback

log = logging.getLogger("claimsieve")


def curl_example(settings: Settings) -> str:
    auth = "" if not settings.auth else ' -H "Authorization: Bearer $CLAIMSIEVE_KEY"'
    body = json.dumps(
        {
            "text": "The for statement iterates over the items of a sequence. "
            "Python lists are immutable."
        }
    )
    return (
        f"curl -s -X POST http://{settings.host}:{settings.port}/v1/checks{auth} "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


class BodyLimit:
    """Answer 413 when a request body is over the limit (document uploads have their own)."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Document uploads and job submissions carry many texts at once.
        upload = scope["path"].endswith("/documents") or scope["path"] == "/v1/jobs"
        limit = self.max_upload_bytes if upload else self.max_bytes
        detail = f"the request body is over the limit of {limit} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await problem(413, "payload_too_large", detail)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise StarletteHTTPException(413, detail)
            return message

        await self.app(scope, limited, send)


class HtmlHeaders:
    """Every HTML page (the API docs too) may not be framed, sniffed or told where it was
    linked from; /ui sets a strict Content-Security-Policy of its own."""

    ADDED = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                kind = dict(headers).get(b"content-type", b"")
                if kind.startswith(b"text/html"):
                    headers += [(n, v) for n, v in self.ADDED if n not in names]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, headed)


def create_app(settings: Settings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """Build the app; models, database and corpora are loaded by the lifespan.

    Args:
        settings: Settings; default ``get_settings()``.
        embedder: Embedder to use instead of MiniLM (tests).
    """
    settings = settings or get_settings()
    if not settings.auth and not is_loopback(settings.host):
        raise RuntimeError(
            f"refusing to run without authentication on {settings.host}: "
            "no-auth is allowed on a loopback address only"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not logging.getLogger().handlers:  # under plain uvicorn, show our progress lines
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        built = await run_in_threadpool(components.build, settings, embedder)
        app.state.sessions = built.sessions
        app.state.checker = built.checker
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=Worker(
                    built.sessions,
                    built.checker,
                    batch=settings.job_batch,
                    lease_s=settings.job_lease_s,
                    callbacks=callbacks(settings),
                ).run,
                args=(stop,),
                name=f"claimsieve-job-worker-{n}",
                daemon=True,
            )
            for n in range(settings.job_workers)
        ]
        app.state.label_studio = DeliveryWorker(built.sessions)
        workers.append(
            threading.Thread(
                target=app.state.label_studio.run,
                args=(stop,),
                name="claimsieve-label-studio",
                daemon=True,
            )
        )
        for worker in workers:
            worker.start()
        log.info(
            "claimsieve is ready on http://%s:%s (docs at /docs). Try:\n  %s",
            settings.host,
            settings.port,
            curl_example(settings),
        )
        yield
        stop.set()
        app.state.label_studio.wake()
        for worker in workers:
            worker.join(timeout=30)
        built.engine.dispose()

    app = FastAPI(
        title="claimsieve",
        version="0.1.0",
        summary="Atomic claims, evidence and calibrated verdicts for model responses.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes
    )
    app.add_middleware(
        Admission,
        max_inflight=settings.max_inflight,
        rate_limit_per_minute=settings.rate_limit_per_minute,
    )
    app.add_middleware(TimeLimit, seconds=settings.request_timeout_s)
    app.add_middleware(HtmlHeaders)
    if settings.cors_origins:  # off unless configured: no browser page elsewhere may call in
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    for module in (health, checks, jobs, corpora, keys, audit, reviews, label_studio, ui):
        app.include_router(module.router)
    return app
