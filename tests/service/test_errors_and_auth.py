"""Every error is application/problem+json with one shape; auth and roles on every route."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.app import create_app
from service.store.models import Check, Claim, Corpus, CorpusVersion
from tests.factories import Api, FakeEmbedder, assert_problem, make_settings


def v1_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) of the public API, read from its OpenAPI document."""
    routes = []
    for path, operations in api.client.get("/openapi.json").json()["paths"].items():
        if path.startswith("/v1"):
            concrete = (
                path.replace("{check_id}", "x")
                .replace("{claim_id}", "x")
                .replace("{name}", "docs")
                .replace("{key_id}", "1")
                .replace("{document_id}", "x")
            )
            routes += [(method.upper(), concrete) for method in operations]
    return routes


def test_every_v1_route_needs_a_key(api: Api) -> None:
    routes = v1_routes(api)
    assert len(routes) >= 12
    for method, path in routes:
        assert_problem(api.client.request(method, path), 401, "missing_credentials")
        wrong = {"Authorization": "Bearer cs_not-a-real-key"}
        assert_problem(api.client.request(method, path, headers=wrong), 401, "invalid_credentials")


def test_roles(api: Api) -> None:
    pipeline, trainer = api.headers("pipeline"), api.headers("trainer")
    assert_problem(
        api.client.post("/v1/corpora", json={"name": "x"}, headers=pipeline), 403, "forbidden_role"
    )
    assert_problem(api.client.post("/v1/corpora/docs/documents", json=[], headers=pipeline), 403)
    assert_problem(
        api.client.post("/v1/keys", json={"name": "n", "role": "admin"}, headers=trainer), 403
    )
    assert_problem(api.client.get("/v1/keys", headers=trainer), 403)
    assert_problem(
        api.client.post("/v1/checks", json={"text": "Paris is in France."}, headers=trainer), 403
    )
    assert api.client.get("/v1/corpora/docs", headers=pipeline).status_code == 200


def test_admin_creates_and_revokes_keys(api: Api) -> None:
    admin = api.headers("admin")
    created = api.client.post("/v1/keys", json={"name": "ana", "role": "trainer"}, headers=admin)
    assert created.status_code == 201
    key = created.json()
    assert key["key"].startswith("cs_") and key["role"] == "trainer"
    listed = api.client.get("/v1/keys", headers=admin).json()
    assert all("key" not in row for row in listed)
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert api.client.get("/v1/corpora", headers=headers).status_code == 200
    assert api.client.delete(f"/v1/keys/{key['id']}", headers=admin).status_code == 200
    assert_problem(api.client.get("/v1/corpora", headers=headers), 401, "invalid_credentials")
    assert_problem(api.client.delete("/v1/keys/9999", headers=admin), 404)


def _counts(api: Api) -> tuple[int, ...]:
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        return tuple(
            db.scalar(select(func.count()).select_from(t)) or 0
            for t in (Check, Claim, Corpus, CorpusVersion)
        )


@pytest.mark.parametrize(
    ("path", "kwargs", "code"),
    [
        ("/v1/checks", {"json": {"text": ""}}, "validation_error"),
        ("/v1/checks", {"json": {"text": "   \n\t "}}, "empty_text"),
        ("/v1/checks", {"json": {"text": "a" * 20_001}}, "text_too_long"),
        ("/v1/checks", {"json": {"text": "Paris.", "corpus": "missing"}}, "unknown_corpus"),
        ("/v1/checks", {"json": {"text": "Paris.", "surprise": 1}}, "validation_error"),
        ("/v1/checks", {"json": {"text": "Paris.", "store": 0}}, "validation_error"),
        ("/v1/claims:verify", {"json": {"claims": [""]}}, "validation_error"),
        ("/v1/checks", {"json": {"text": "Paris.", "options": {"top_k": 0}}}, "validation_error"),
        (
            "/v1/checks",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            "malformed_json",
        ),
        ("/v1/checks", {"json": ["a list"]}, "validation_error"),
        ("/v1/claims:verify", {"json": {"claims": []}}, "validation_error"),
        ("/v1/claims:verify", {"json": {"claims": ["  "]}}, "empty_text"),
        ("/v1/corpora", {"json": {"name": "Bad Name!"}}, "validation_error"),
        (
            "/v1/corpora/docs/documents",
            {"content": b'[{"id": 1', "headers": {"Content-Type": "application/json"}},
            "malformed_json",
        ),
        (
            "/v1/corpora/docs/documents",
            {
                "content": b'{"id": "a", "text": "x"}\nnope\n',
                "headers": {"Content-Type": "application/x-ndjson"},
            },
            "malformed_json",
        ),
        ("/v1/corpora/docs/documents", {"json": [{"id": "a"}]}, "invalid_document"),
        (
            "/v1/corpora/docs/documents",
            {"json": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]},
            "duplicate_document_id",
        ),
        ("/v1/corpora/docs/documents", {"json": []}, "no_documents"),
    ],
)
def test_invalid_requests_are_422_and_write_nothing(api: Api, path, kwargs, code) -> None:
    before = _counts(api)
    headers = {**api.headers("admin"), **kwargs.pop("headers", {})}
    body = assert_problem(api.client.post(path, headers=headers, **kwargs), 422, code)
    if code == "validation_error":
        assert body["errors"] and {"loc", "msg", "type"} <= set(body["errors"][0])
    assert _counts(api) == before


def test_not_found_method_not_allowed_and_media_type(api: Api) -> None:
    admin = api.headers("admin")
    assert_problem(api.client.get("/v1/checks/chk_missing", headers=admin), 404, "check_not_found")
    assert_problem(api.client.get("/v1/claims/clm_missing", headers=admin), 404, "claim_not_found")
    assert_problem(api.client.get("/v1/corpora/missing", headers=admin), 404, "corpus_not_found")
    assert_problem(api.client.get("/v1/corpora/missing/search?q=x", headers=admin), 404)
    assert_problem(
        api.client.post(
            "/v1/corpora/missing/documents", json=[{"id": "a", "text": "b"}], headers=admin
        ),
        404,
    )
    assert_problem(api.client.get("/no/such/route"), 404, "not_found")
    assert_problem(api.client.delete("/v1/checks", headers=admin), 405, "method_not_allowed")
    assert api.client.put("/v1/corpora", headers=admin).headers["allow"] == "GET, POST"
    assert api.client.put("/v1/keys/3", headers=admin).headers["allow"] == "DELETE"
    assert_problem(
        api.client.post(
            "/v1/corpora/docs/documents",
            content=b"id,text",
            headers={**admin, "Content-Type": "text/csv"},
        ),
        415,
    )


def test_body_over_the_limit_is_413(api: Api) -> None:
    limit = api.settings.max_body_bytes
    before = _counts(api)
    big = {"text": "word " * (limit // 4)}
    assert_problem(
        api.client.post("/v1/checks", json=big, headers=api.headers("pipeline")),
        413,
        "payload_too_large",
    )

    def chunks():  # no Content-Length: the limit must hold on the stream too
        for _ in range(limit // 1000 + 2):
            yield b" " * 1000

    streamed = api.client.post(
        "/v1/checks",
        content=chunks(),
        headers={**api.headers("pipeline"), "Content-Type": "application/json"},
    )
    assert_problem(streamed, 413, "payload_too_large")
    assert _counts(api) == before


def test_unexpected_errors_are_500_without_a_trace(api: Api, monkeypatch) -> None:
    checker = api.client.app.state.checker  # type: ignore[attr-defined]

    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(checker, "check", explode)
    response = api.client.post(
        "/v1/checks", json={"text": "Paris is in France."}, headers=api.headers("pipeline")
    )
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert body["detail"] == "the server failed to handle this request"


def test_no_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="loopback"):
        create_app(make_settings(tmp_path, auth=False, host="0.0.0.0"), FakeEmbedder())


def test_no_auth_on_loopback_acts_as_local_admin(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    app = create_app(make_settings(tmp_path, auth=False), FakeEmbedder())
    with TestClient(app) as client:
        assert client.post("/v1/corpora", json={"name": "open"}).status_code == 201


def test_health_and_readiness(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert api.client.get("/docs").status_code == 200
    assert "/v1/checks" in api.client.get("/openapi.json").json()["paths"]


def test_metrics_count_requests_by_route_and_verdicts(api: Api) -> None:
    posted = 'claimsieve_http_requests_total{method="POST",route="/v1/checks",status="201"}'
    missing = (
        'claimsieve_http_requests_total{method="GET",route="/v1/checks/{check_id}",status="404"}'
    )
    supported, unchecked = (
        'claimsieve_claims_total{verdict="SUPPORTED"}',
        'claimsieve_claims_total{verdict="NONE"}',
    )

    def counts() -> dict[str, float]:
        response = api.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = dict(line.rsplit(" ", 1) for line in response.text.splitlines() if line[:1] != "#")
        return {name: float(found.get(name, 0)) for name in (posted, missing, supported, unchecked)}

    before = counts()
    api.client.post(
        "/v1/checks",
        json={"text": "Marie Curie was born in Warsaw. Is it so?"},
        headers=api.headers("pipeline"),
    )
    api.client.get("/v1/checks/chk_nope", headers=api.headers("admin"))
    after = counts()
    # The app is shared by the tests of a session: what this test did adds one to each.
    assert {name: after[name] - before[name] for name in after} == dict.fromkeys(after, 1.0)
