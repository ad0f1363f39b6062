"""API-key authentication and role checks.

Roles: ``admin`` may do everything; ``pipeline`` checks and verifies;
``trainer`` reads checks and claims (and, later, reviews and exports).
Every key may read corpora and search them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session

from service.errors import ForbiddenError, UnauthorizedError
from service.store.keys import find_active_key

ROLES = ("admin", "trainer", "pipeline")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name is who acts (e.g. the reviewer)."""

    name: str
    role: str
    key_id: int | None


ANONYMOUS_ADMIN = Principal("local", "admin", None)


def authenticate(
    request: Request, db: Session, auth_enabled: bool, basic: bool = False
) -> Principal:
    """The caller of a request, by its ``Bearer`` key; with ``basic``, also by the password of
    ``Basic`` credentials (what an annotation tool can send), the user name being ignored."""
    if not auth_enabled:
        return ANONYMOUS_ADMIN
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if basic and scheme.lower() == "basic":
        try:
            token = base64.b64decode(token.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            token = ""
        scheme = "bearer"
    if scheme.lower() != "bearer" or not token.strip():
        also = " or as the password of Basic credentials" if basic else ""
        raise UnauthorizedError(
            f"send an API key as 'Authorization: Bearer <key>'{also}", "missing_credentials"
        )
    key = find_active_key(db, token.strip())
    if key is None:
        raise UnauthorizedError("the API key is unknown or revoked", "invalid_credentials")
    return Principal(key.name, key.role, key.id)


def authorize(principal: Principal, roles: tuple[str, ...]) -> Principal:
    if principal.role != "admin" and principal.role not in roles:
        allowed = ", ".join(("admin", *roles))
        raise ForbiddenError(
            f"a {principal.role} key cannot do this (allowed: {allowed})", "forbidden_role"
        )
    return principal
