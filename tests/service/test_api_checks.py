"""Checks and claims over the API (fake embedder, real spaCy, SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from service.store.models import Check, Claim, Evidence
from tests.factories import Api, FakeEmbedder, assert_problem, make_settings, open_api

TEXT = (
    "The Eiffel Tower is in Paris, France. It was completed in 1901. "
    "Marie Curie was born in Warsaw in 1867. Is it tall?"
)


def _rows(api: Api) -> tuple[int, int, int]:
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        return (
            db.scalar(select(func.count()).select_from(Check)) or 0,
            db.scalar(select(func.count()).select_from(Claim)) or 0,
            db.scalar(select(func.count()).select_from(Evidence)) or 0,
        )


def test_check_is_stored_and_read_back_the_same(api_any_db: Api) -> None:
    api = api_any_db
    response = api.client.post(
        "/v1/checks",
        json={"text": TEXT, "metadata": {"batch": "7"}},
        headers=api.headers("pipeline"),
    )
    assert response.status_code == 201, response.text
    check = response.json()
    assert check["stored"] is True
    assert check["corpus"] == {"name": "docs", "version": 1}
    assert check["verifier"]["name"] == "features"
    assert [c["text"] for c in check["claims"]] == [
        "The Eiffel Tower is in Paris, France.",
        "The Eiffel Tower was completed in 1901.",
        "Marie Curie was born in Warsaw.",
        "Marie Curie was born in 1867.",
        "Is it tall?",
    ]
    assert check["extractor"] == "parse/6" and check["warnings"] == []
    for claim in check["claims"]:
        assert claim["spans"], claim
        pieces = [TEXT[s["start"] : s["end"]] for s in claim["spans"]]
        assert " ".join(pieces) == claim["source_text"]
    question = check["claims"][4]
    assert question["checkworthy"] is False and question["checkworthy_reason"] == "question"
    assert question["verdict"] is None
    assert check["summary"]["checkworthy"] == 4 and check["summary"]["not_checkworthy"] == 1

    again = api.client.get(f"/v1/checks/{check['id']}", headers=api.headers("trainer"))
    assert again.status_code == 200
    assert again.json()["created_at"].endswith(("+00:00", "Z"))  # aware, on SQLite too
    assert {**again.json(), "created_at": None} == {**check, "created_at": None}

    claim = check["claims"][0]
    one = api.client.get(f"/v1/claims/{claim['id']}", headers=api.headers("trainer"))
    assert one.status_code == 200 and one.json() == claim
    assert _rows(api)[0] == 1


def test_verdicts_carry_scores_evidence_and_reasons(api: Api) -> None:
    check = api.client.post(
        "/v1/checks", json={"text": TEXT}, headers=api.headers("pipeline")
    ).json()
    completed = check["claims"][1]
    assert completed["text"] == "The Eiffel Tower was completed in 1901."
    for claim in check["claims"][:4]:
        assert set(claim["scores"]) == {"SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"}
        assert abs(sum(claim["scores"].values()) - 1.0) < 1e-6
        assert claim["confidence"] == max(claim["scores"].values())
        assert claim["evidence"], claim
        for evidence in claim["evidence"]:
            assert 0 <= evidence["span"]["start"] < evidence["span"]["end"] <= len(evidence["text"])
    born = check["claims"][2]
    assert born["verdict"] == "SUPPORTED"
    assert born["evidence"][0]["document_id"] == "curie"
    assert born["evidence"][0]["stance"] == "supports"


def test_number_mismatch_is_refuted_with_spans_on_both_sides(api: Api) -> None:
    text = "The Eiffel Tower was completed in 1901 in Paris, France."
    claim = api.client.post(
        "/v1/checks", json={"text": text}, headers=api.headers("pipeline")
    ).json()["claims"][0]
    assert claim["verdict"] == "REFUTED", claim
    reason = next(r for r in claim["reasons"] if r["code"] == "date_mismatch")
    assert reason["claim"]["text"] == "1901"
    assert (
        claim["text"][reason["claim"]["span"]["start"] : reason["claim"]["span"]["end"]] == "1901"
    )
    evidence = next(
        e for e in claim["evidence"] if e["passage_id"] == reason["evidence"]["passage_id"]
    )
    span = reason["evidence"]["span"]
    assert evidence["text"][span["start"] : span["end"]] == "1889"
    (refuting,) = [e for e in claim["evidence"] if e["stance"] == "refutes"]
    assert "1889" in refuting["text"][refuting["span"]["start"] : refuting["span"]["end"]]
    assert claim["flagged"] is True


def test_store_false_keeps_nothing(api: Api) -> None:
    before = _rows(api)
    response = api.client.post(
        "/v1/checks", json={"text": TEXT, "store": False}, headers=api.headers("pipeline")
    )
    assert response.status_code == 200  # nothing was created
    assert response.json()["stored"] is False
    assert _rows(api) == before
    assert (
        api.client.get(
            f"/v1/checks/{response.json()['id']}", headers=api.headers("admin")
        ).status_code
        == 404
    )


def test_a_check_not_stored_reads_as_the_stored_one(api: Api) -> None:
    def answer(store: bool) -> dict:
        body = {"text": TEXT, "store": store, "metadata": {"batch": "b1"}}
        check = api.client.post("/v1/checks", json=body, headers=api.headers("pipeline")).json()
        for claim in check["claims"]:
            del claim["id"], claim["check_id"]
        del check["id"], check["stored"], check["created_at"]
        return check

    kept, fresh = answer(True), answer(False)
    assert kept["claims"] and any(c["evidence"] for c in kept["claims"])
    assert fresh == kept


def test_a_check_says_where_its_time_went_when_asked(api: Api) -> None:
    def stage_counts() -> dict[str, float]:
        text = api.client.get("/metrics").text
        prefix = "claimsieve_check_stage_seconds_count{stage="
        return {
            line[len(prefix) + 1 : line.index('"}')]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(prefix)
        }

    checker = api.client.app.state.checker  # type: ignore[attr-defined]
    before = stage_counts()
    plain = api.client.post("/v1/checks", json={"text": TEXT}, headers=api.headers("pipeline"))
    assert plain.json()["timings"] is None
    for store in (True, False):
        checker.forget()  # remembered verdicts would skip retrieval and verification
        body = {"text": TEXT, "options": {"timings": True}, "store": store}
        timed = api.client.post("/v1/checks", json=body, headers=api.headers("pipeline")).json()
        ms = timed["timings"]
        parts = ("extraction", "embedding", "search", "verification", "aggregation")
        assert set(parts) | {"corpus", "total", "verification.features"} <= set(ms), ms
        assert ("store" in ms) is store
        assert all(value >= 0 for value in ms.values())
        assert ms["total"] >= sum(ms[p] for p in parts) * 0.99
        assert ms["verification"] >= ms["verification.features"]
    # Every check's stages are in the histogram: three checks, two of them stored.
    after = stage_counts()
    assert after["total"] - before.get("total", 0) == 3
    assert after["store"] - before.get("store", 0) == 2


def test_claims_verify_checks_each_claim_as_given(api: Api) -> None:
    claims = ["Marie Curie was born in Warsaw.", "Python was first released in 1991."]
    response = api.client.post(
        "/v1/claims:verify", json={"claims": claims}, headers=api.headers("pipeline")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "verify"
    assert [c["text"] for c in body["claims"]] == claims
    assert [c["verdict"] for c in body["claims"]] == ["SUPPORTED", "SUPPORTED"]


def test_unknown_corpus_is_422_and_writes_nothing(api: Api) -> None:
    before = _rows(api)
    response = api.client.post(
        "/v1/checks", json={"text": TEXT, "corpus": "nope"}, headers=api.headers("pipeline")
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_corpus"
    assert _rows(api) == before


def test_top_k_option_limits_evidence(api: Api) -> None:
    check = api.client.post(
        "/v1/checks", json={"text": TEXT, "options": {"top_k": 1}}, headers=api.headers("pipeline")
    ).json()
    assert any(c["evidence"] for c in check["claims"]), check  # not true of nothing
    assert all(len(c["evidence"]) <= 1 for c in check["claims"])


@pytest.mark.slow
def test_concurrent_checks_are_all_stored(api_any_db: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    api = api_any_db

    def post(n: int) -> str:
        response = api.client.post(
            "/v1/checks",
            json={"text": f"Marie Curie won {n} prizes."},
            headers=api.headers("pipeline"),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(post, range(24)))
    assert len(set(ids)) == 24
    assert _rows(api)[0] == 24
    for check_id in ids:
        assert (
            api.client.get(f"/v1/checks/{check_id}", headers=api.headers("admin")).status_code
            == 200
        )


def test_an_llm_extractor_that_is_down_falls_back_and_the_check_says_so(tmp_path) -> None:
    settings = make_settings(
        tmp_path,
        extractor="llm",
        llm_base_url="http://127.0.0.1:9/v1",  # the discard port: nothing listens
        llm_model="any",
        llm_retries=0,
        llm_timeout_s=2,
    )
    for api in open_api(settings, FakeEmbedder()):
        response = api.client.post(
            "/v1/checks", json={"text": TEXT}, headers=api.headers("pipeline")
        )
        assert response.status_code == 201, response.text
        check = response.json()
        assert check["extractor"] == "parse/6"
        assert [w["code"] for w in check["warnings"]] == ["llm_fallback"]
        assert "cannot reach the endpoint" in check["warnings"][0]["message"]
        again = api.client.get(f"/v1/checks/{check['id']}", headers=api.headers("trainer"))
        assert again.json()["warnings"] == check["warnings"]


def test_the_llm_extractor_without_an_endpoint_is_a_settings_error(tmp_path) -> None:
    with pytest.raises(ValidationError, match="CLAIMSIEVE_LLM_BASE_URL"):
        make_settings(tmp_path, extractor="llm")


def test_rank_puts_a_planted_false_statement_below_its_true_twin(api: Api) -> None:
    true = "The Eiffel Tower was completed in 1889. Marie Curie was born in Warsaw."
    planted = "The Eiffel Tower was completed in 1925. Marie Curie was born in Warsaw."
    body = {"prompt": "Tell me two facts.", "responses": [planted, true]}
    ranking = api.client.post("/v1/rank", json=body, headers=api.headers("pipeline"))
    assert ranking.status_code == 200, ranking.text
    ranked = ranking.json()["ranked"]
    assert [r["index"] for r in ranked] == [1, 0]
    assert ranked[0]["score"] > ranked[1]["score"] and ranked[1]["refuted"] > 0
    assert ranked[1]["check"]["stored"] is False and ranked[1]["check"]["prompt"] == body["prompt"]
    (pair,) = ranking.json()["pairs"]
    assert (pair["chosen"], pair["rejected"]) == (true, planted) and pair["margin"] > 0
    assert_problem(
        api.client.post(
            "/v1/rank", json={**body, "responses": [true]}, headers=api.headers("pipeline")
        ),
        422,
        "validation_error",
    )
    assert_problem(
        api.client.post(
            "/v1/rank", json={**body, "responses": [true, "   "]}, headers=api.headers("pipeline")
        ),
        422,
        "empty_text",
    )


def test_a_claim_checked_again_is_not_verified_again_until_the_corpus_changes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = api.client.app.state.checker  # type: ignore[attr-defined]
    verified: list[str] = []
    real = checker.verifier.verify

    def counting(claims, evidence):  # type: ignore[no-untyped-def]
        verified.extend(c.text for c in claims)
        return real(claims, evidence)

    monkeypatch.setattr(checker.verifier, "verify", counting)
    pipeline = api.headers("pipeline")
    first = api.client.post("/v1/checks", json={"text": TEXT}, headers=pipeline).json()
    assert len(verified) == 4
    # The same claims again, one of them twice in one response: nothing is verified.
    text = TEXT + " Marie Curie was born in Warsaw."
    again = api.client.post("/v1/checks", json={"text": text}, headers=pipeline).json()
    assert len(verified) == 4
    fields = ("verdict", "confidence", "scores", "reasons", "evidence")
    for one, other in zip(first["claims"][:4], again["claims"][:4], strict=True):
        assert {f: one[f] for f in fields} == {f: other[f] for f in fields}
        assert one["id"] != other["id"]
    assert again["claims"][-1]["verdict"] == first["claims"][2]["verdict"]
    # A new corpus version: verified again.
    added = api.client.post(
        "/v1/corpora/docs/documents",
        json=[{"id": "moon", "title": "Moon", "text": "The Moon orbits the Earth."}],
        headers=api.headers("admin"),
    )
    assert added.status_code == 201
    api.client.post("/v1/checks", json={"text": TEXT}, headers=pipeline)
    assert len(verified) == 8
