"""API keys (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.deps import AdminDep, SessionDep
from service.schemas import KeyCreate, KeyCreated, KeyOut, problem_responses
from service.store import keys as key_store
from service.store.models import ApiKey

router = APIRouter(
    prefix="/v1/keys", tags=["keys"], responses=problem_responses(400, 401, 403, 404, 422, 500)
)


def _out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        role=key.role,
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@router.post("", status_code=201)
def create_key(body: KeyCreate, db: SessionDep, _: AdminDep) -> KeyCreated:
    """Create an API key; the key is in this response only."""
    key, plaintext = key_store.create_key(db, body.name, body.role)
    return KeyCreated(**_out(key).model_dump(), key=plaintext)


@router.get("")
def list_keys(db: SessionDep, _: AdminDep) -> list[KeyOut]:
    """List API keys (never the keys themselves)."""
    return [_out(key) for key in key_store.list_keys(db)]


@router.delete("/{key_id}")
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1)], db: SessionDep, _: AdminDep
) -> KeyOut:
    """Revoke an API key; it stops working at once."""
    return _out(key_store.revoke_key(db, key_id))
