"""Keys that expire and rotate, the audit log, CORS off unless configured, no keys in logs."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.app import create_app
from service.store import keys as key_store
from service.store.models import ApiKey, utcnow
from tests.factories import Api, FakeEmbedder, assert_problem, make_settings


def sessions(api: Api):  # type: ignore[no-untyped-def]
    return api.client.app.state.sessions  # type: ignore[attr-defined]


def test_an_expired_key_is_refused_and_a_wrong_key_with_a_right_prefix_too(api: Api) -> None:
    made = api.client.post(
        "/v1/keys",
        json={"name": "short-lived", "role": "trainer", "expires_in_days": 1},
        headers=api.headers("admin"),
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert made.json()["expires_at"] is not None
    mine = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/v1/agreement", headers=mine).status_code == 200
    forged = {"Authorization": f"Bearer {key[:10]}{'A' * (len(key) - 10)}"}
    assert_problem(api.client.get("/v1/agreement", headers=forged), 401, "invalid_credentials")
    with sessions(api)() as db:
        db.execute(
            update(ApiKey)
            .where(ApiKey.id == made.json()["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.commit()
    assert_problem(api.client.get("/v1/agreement", headers=mine), 401, "invalid_credentials")


def test_rotation_gives_a_new_key_and_the_old_one_a_grace_period(api: Api) -> None:
    with sessions(api)() as db:
        old, plaintext = key_store.create_key(db, "nightly", "pipeline")
    before = {"Authorization": f"Bearer {plaintext}"}
    rotated = api.client.post(
        f"/v1/keys/{old.id}/rotate", params={"grace_s": 3600}, headers=api.headers("admin")
    )
    assert rotated.status_code == 201, rotated.text
    after = {"Authorization": f"Bearer {rotated.json()['key']}"}
    assert rotated.json()["name"] == "nightly" and rotated.json()["role"] == "pipeline"
    for headers in (before, after):  # both work during the grace period
        assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    now = api.client.post(
        f"/v1/keys/{old.id}/rotate", params={"grace_s": 0}, headers=api.headers("admin")
    )
    assert now.status_code == 201
    assert_problem(api.client.get("/v1/jobs", headers=before), 401)
    assert api.client.get("/v1/jobs", headers=after).status_code == 200
    assert_problem(api.client.post("/v1/keys/999999/rotate", headers=api.headers("admin")), 404)


def test_admin_actions_are_in_the_audit_log(api: Api) -> None:
    admin = api.headers("admin")
    made = api.client.post("/v1/keys", json={"name": "x", "role": "trainer"}, headers=admin)
    api.client.delete(f"/v1/keys/{made.json()['id']}", headers=admin)
    api.client.post("/v1/corpora", json={"name": "handbook"}, headers=admin)
    added = api.client.post(
        "/v1/corpora/handbook/documents",
        json=[{"id": "leave", "text": "Employees get 25 days of leave."}],
        headers=admin,
    )
    assert added.status_code == 201, added.text
    api.client.delete("/v1/corpora/handbook/documents/leave", headers=admin)
    log = api.client.get("/v1/audit", headers=admin)
    assert log.status_code == 200, log.text
    actions = [(e["action"], e["target"], e["actor"]) for e in log.json()]
    assert actions == [
        ("corpus.documents.delete", "corpus handbook", "admin-tester"),
        ("corpus.documents.add", "corpus handbook", "admin-tester"),
        ("corpus.create", "corpus handbook", "admin-tester"),
        ("key.revoke", f"key {made.json()['id']}", "admin-tester"),
        ("key.create", f"key {made.json()['id']}", "admin-tester"),
    ]
    older = api.client.get("/v1/audit", params={"before": log.json()[1]["id"]}, headers=admin)
    assert [e["action"] for e in older.json()][0] == "corpus.create"
    assert_problem(api.client.get("/v1/audit", headers=api.headers("trainer")), 403)


def test_keys_never_reach_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        api.client.get("/v1/agreement", headers=api.headers("trainer"))
        api.client.get("/v1/agreement", headers={"Authorization": "Bearer cs_wrong-key-123"})
        made = api.client.post(
            "/v1/keys", json={"name": "y", "role": "trainer"}, headers=api.headers("admin")
        )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (*api.keys.values(), "cs_wrong-key-123", made.json()["key"]):
        assert secret not in logged


def test_cors_is_off_unless_origins_are_configured(api: Api, tmp_path: Path) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    refused = api.client.options("/v1/checks", headers=preflight)
    assert "access-control-allow-origin" not in refused.headers
    settings = make_settings(tmp_path, cors_origins=["https://tool.example"])
    client = TestClient(create_app(settings, embedder=FakeEmbedder()))  # no lifespan needed
    allowed = client.options("/v1/checks", headers={**preflight, "Origin": "https://tool.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://tool.example"
    other = client.options("/v1/checks", headers=preflight)
    assert "access-control-allow-origin" not in other.headers


def test_keys_are_stored_as_salted_scrypt_and_old_sha256_keys_are_rehashed(api: Api) -> None:
    import hashlib

    with sessions(api)() as db:
        new, plaintext = key_store.create_key(db, "fresh", "trainer")
        assert new.key_hash.startswith("scrypt$") and plaintext not in new.key_hash
        legacy_key = "cs_" + "L" * 43
        old = ApiKey(
            name="legacy",
            role="trainer",
            prefix=legacy_key[:10],
            key_hash=hashlib.sha256(legacy_key.encode()).hexdigest(),
        )
        db.add(old)
        db.commit()
        old_id = old.id
    legacy = {"Authorization": f"Bearer {legacy_key}"}
    assert api.client.get("/v1/agreement", headers=legacy).status_code == 200
    with sessions(api)() as db:
        assert db.get(ApiKey, old_id).key_hash.startswith("scrypt$")  # type: ignore[union-attr]
    assert api.client.get("/v1/agreement", headers=legacy).status_code == 200
