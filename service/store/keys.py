"""API keys: created once, stored only as a SHA-256 hash, compared in constant time.

A key is found by its stored prefix (which is not secret: it is shown in listings) and
then its hash is compared with ``hmac.compare_digest``, so the time an answer takes does
not depend on how much of a guessed key is right. A key may expire; rotating one makes a
new key for the same name and role and lets the old one work for a grace period.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import NotFoundError
from service.store.models import ApiKey, utcnow

KEY_PREFIX = "cs_"


def hash_key(plaintext: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough; there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(
    db: Session, name: str, role: str, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its plaintext, which is never stored."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        role=role,
        prefix=plaintext[:10],
        key_hash=hash_key(plaintext),
        expires_at=expires_at,
    )
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


def rotate_key(db: Session, key_id: int, grace: timedelta) -> tuple[ApiKey, ApiKey, str]:
    """A new key with the old one's name and role; the old one expires after ``grace``.

    Returns:
        The old key, the new key and the new key's plaintext.
    """
    old = db.get(ApiKey, key_id)
    if old is None or old.revoked_at is not None:
        raise NotFoundError(f"no active API key with id {key_id}")
    until = utcnow() + grace
    if old.expires_at is None or old.expires_at > until:
        old.expires_at = until
    new, plaintext = create_key(db, old.name, old.role)
    db.refresh(old)
    return old, new, plaintext


def find_active_key(db: Session, plaintext: str) -> ApiKey | None:
    """The key ``plaintext`` names, if it is neither revoked nor expired."""
    wanted = hash_key(plaintext)
    now = utcnow()
    for key in db.scalars(select(ApiKey).where(ApiKey.prefix == plaintext[:10])):
        if hmac.compare_digest(key.key_hash, wanted):
            if key.revoked_at is None and (key.expires_at is None or key.expires_at > now):
                return key
    return None
