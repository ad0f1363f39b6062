"""API keys (admin only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from service.deps import AdminDep, SessionDep, audit
from service.schemas import KeyCreate, KeyCreated, KeyOut, problem_responses
from service.store import keys as key_store
from service.store.models import ApiKey, utcnow

router = APIRouter(
    prefix="/v1/keys", tags=["keys"], responses=problem_responses(400, 401, 403, 404, 422, 500)
)


def _out(key: ApiKey) -> KeyOut:
    return KeyOut.model_validate(key, from_attributes=True)


@router.post("", status_code=201)
def create_key(
    body: KeyCreate, request: Request, db: SessionDep, principal: AdminDep
) -> KeyCreated:
    """Create an API key; the key is in this response only."""
    expires = None if body.expires_in_days is None else utcnow() + timedelta(body.expires_in_days)
    key, plaintext = key_store.create_key(db, body.name, body.role, expires)
    audit(request, principal, "key.create", f"key {key.id}", {"name": key.name, "role": key.role})
    return KeyCreated(**_out(key).model_dump(), key=plaintext)


@router.post("/{key_id}/rotate", status_code=201)
def rotate_key(
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    request: Request,
    db: SessionDep,
    principal: AdminDep,
    grace_s: Annotated[float, Query(ge=0, le=30 * 86400)] = 86400,
) -> KeyCreated:
    """A new key for the same name and role; the old one keeps working for ``grace_s``."""
    old, new, plaintext = key_store.rotate_key(db, key_id, timedelta(seconds=grace_s))
    audit(
        request, principal, "key.rotate", f"key {old.id}", {"new_key": new.id, "grace_s": grace_s}
    )
    return KeyCreated(**_out(new).model_dump(), key=plaintext)


@router.get("")
def list_keys(db: SessionDep, _: AdminDep) -> list[KeyOut]:
    """List API keys (never the keys themselves)."""
    return [_out(key) for key in key_store.list_keys(db)]


@router.delete("/{key_id}")
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    request: Request,
    db: SessionDep,
    principal: AdminDep,
) -> KeyOut:
    """Revoke an API key; it stops working at once."""
    key = key_store.revoke_key(db, key_id)
    audit(request, principal, "key.revoke", f"key {key.id}", {"name": key.name})
    return _out(key)
