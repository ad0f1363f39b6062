"""API keys: created once, stored only as a salted scrypt hash, compared in constant time.

A key is found by its stored prefix (which is not secret: it is shown in listings);
then its scrypt hash (``scrypt$<salt>$<hash>``, about 60 ms to compute here) is compared
with ``hmac.compare_digest``, so neither a stolen table nor the time of an answer helps a
guess. A key verified once is remembered by this process for a minute by the SHA-256 of
its plaintext, so requests do not pay the slow hash each time; its row is still read on
every request, so a revocation or an expiry takes effect at once. Keys stored as plain
SHA-256 hashes by earlier versions still work and are rehashed when next used.

A key may expire; rotating one makes a new key for the same name and role and lets the
old one work for a grace period.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import NotFoundError
from service.store.models import ApiKey, utcnow

KEY_PREFIX = "cs_"


SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
REMEMBER_S = 60.0
# sha256 of a key -> (its row id, the row's stored hash, until when it is trusted)
_verified: dict[str, tuple[int, str, float]] = {}
_verified_lock = threading.Lock()


def hash_key(plaintext: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<hash hex>`` of a key (a fresh salt unless one is given)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(plaintext.encode(), salt=salt, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _matches(stored: str, plaintext: str) -> bool:
    if stored.startswith("scrypt$"):
        _, salt, _ = stored.split("$")
        return hmac.compare_digest(stored, hash_key(plaintext, bytes.fromhex(salt)))
    legacy = hashlib.sha256(plaintext.encode()).hexdigest()  # before scrypt
    return hmac.compare_digest(stored, legacy)


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
    fingerprint = hashlib.sha256(plaintext.encode()).hexdigest()
    with _verified_lock:
        known = _verified.get(fingerprint)
    key = None
    if known is not None and known[2] > time.monotonic():
        key = db.get(ApiKey, known[0])
        if key is not None and key.key_hash != known[1]:  # another database's row
            key = None
    if key is None:
        key = next(
            (
                candidate
                for candidate in db.scalars(select(ApiKey).where(ApiKey.prefix == plaintext[:10]))
                if _matches(candidate.key_hash, plaintext)
            ),
            None,
        )
        if key is None:
            return None
        if not key.key_hash.startswith("scrypt$"):
            key.key_hash = hash_key(plaintext)
            db.commit()
        with _verified_lock:
            _verified[fingerprint] = (key.id, key.key_hash, time.monotonic() + REMEMBER_S)
            if len(_verified) > 10_000:
                _verified.clear()
    now = utcnow()
    if key.revoked_at is None and (key.expires_at is None or key.expires_at > now):
        return key
    return None
