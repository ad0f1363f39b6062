"""``claimsieve serve``: the HTTP service."""

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
