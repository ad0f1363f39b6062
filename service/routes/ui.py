"""The trainers' triage page: a static page (no build step) that works the review queue
through the JSON API with a trainer key kept in the browser tab's session storage."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from service.errors import NotFoundError

router = APIRouter(tags=["ui"], include_in_schema=False)
FILES = {"index.html": "text/html", "ui.js": "text/javascript", "ui.css": "text/css"}
# Only the page's own script and style run; nothing may frame it or learn where it was.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/ui")
def page() -> Response:
    return _file("index.html")


@router.get("/ui/")
def slash() -> RedirectResponse:
    return RedirectResponse("/ui")


@router.get("/ui/{name}")
def asset(name: str) -> Response:
    return _file(name)


def _file(name: str) -> Response:
    if name not in FILES:
        raise NotFoundError(f"no page file named {name!r}", "not_found")
    body = resources.files("service.ui").joinpath(name).read_bytes()
    return Response(body, media_type=FILES[name], headers=HEADERS)
