"""``claimsieve serve`` and ``worker``: the HTTP service, and job workers beside it."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from service.settings import Settings, is_loopback

log = logging.getLogger("claimsieve")


def add(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--no-auth", action="store_true", help="no API keys; allowed on a loopback host only"
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker", help="check queued job items until stopped (Ctrl-C or SIGTERM)"
    )
    worker.add_argument("--batch", type=int, help="items checked together (default: settings)")
    worker.add_argument("--lease", type=float, help="seconds an item is held (default: settings)")
    worker.set_defaults(run=_worker)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.app import create_app

    settings = settings.model_copy(
        update={
            "host": args.host or settings.host,
            "port": args.port or settings.port,
            "auth": settings.auth and not args.no_auth,
        }
    )
    if not settings.auth and not is_loopback(settings.host):
        print(
            f"error: --no-auth is allowed on a loopback host only, not {settings.host}",
            file=sys.stderr,
        )
        return 2
    if not settings.auth:
        log.warning("authentication is OFF (--no-auth): every caller acts as admin")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from service import components
    from service.jobs import Worker, callbacks

    built = components.build(settings)
    worker = Worker(
        built.sessions,
        built.checker,
        batch=args.batch or settings.job_batch,
        lease_s=args.lease or settings.job_lease_s,
        callbacks=callbacks(settings),
    )
    stop = threading.Event()
    for sign in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sign, lambda *_: stop.set())
    log.info("job worker %s is waiting for items", worker.name)
    worker.run(stop)
    log.info("job worker %s stopped", worker.name)
    return 0
