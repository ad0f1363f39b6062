"""API keys: created once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import NotFoundError
from service.store.models import ApiKey, utcnow

KEY_PREFIX = "cs_"


def hash_key(plaintext: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough; there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(db: Session, name: str, role: str) -> tuple[ApiKey, str]:
    """Store a new key and return it with its plaintext, which is never stored."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, prefix=plaintext[:10], key_hash=hash_key(plaintext))
    db.add(key)
    db.commit()
    return key, plaintext


def list_keys(db: Session) -> list[ApiKey]:
    return list(db.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(db: Session, key_id: int) -> ApiKey:
    key = db.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError(f"no API key with id {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.commit()
    return key


def find_active_key(db: Session, plaintext: str) -> ApiKey | None:
    key = db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))
    return key if key is not None and key.revoked_at is None else None
