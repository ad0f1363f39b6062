"""The trainer loop over the API: queue and leases, reviews, agreement, export, calibration."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims import metrics
from claims.types import Label
from service.reviews import agreement_report, preference_rows, submit
from service.store import db as store_db
from service.store import keys as key_store
from service.store import reviews as review_store
from service.store.models import Claim
from service.store.reviews import ReviewDraft
from tests.factories import (
    REVIEWED_TEXT as TEXT,
)
from tests.factories import (
    Api,
    FakeEmbedder,
    add_check,
    assert_problem,
    make_settings,
    open_api,
)


def second_trainer(api: Api, name: str = "bea") -> dict[str, str]:
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        _, key = key_store.create_key(db, name, "trainer")
    return {"Authorization": f"Bearer {key}"}


def sessions(api: Api) -> Any:
    return api.client.app.state.sessions  # type: ignore[attr-defined]


def review(api: Api, claim_id: str, headers: dict[str, str], version: int, **body: Any):
    payload = {"action": "confirm", "expected_version": version, **body}
    return api.client.post(f"/v1/claims/{claim_id}/reviews", json=payload, headers=headers)


def test_queue_orders_by_severity_then_uncertainty_and_leases(api: Api) -> None:
    with sessions(api)() as db:
        ids = add_check(
            db,
            [
                ("SUPPORTED", 0.55),
                ("REFUTED", 0.95),
                ("NOT_ENOUGH_INFO", 0.5),
                ("REFUTED", 0.6),
                ("SUPPORTED", 0.4),
            ],
        )
    ana, bea = api.headers("trainer"), second_trainer(api)
    first = api.client.get("/v1/review-queue", params={"limit": 3}, headers=ana).json()
    order = [item["claim"]["id"] for item in first["items"]]
    assert order == [ids[1], ids[3], ids[2]]  # confident REFUTED, REFUTED, then NEI
    assert first["next_cursor"]
    assert first["items"][0]["lease_expires_at"] and first["items"][0]["check_text"] == TEXT
    # Bea does not get Ana's leased claims; she gets the rest, least sure SUPPORTED first.
    other = api.client.get("/v1/review-queue", params={"limit": 10}, headers=bea).json()
    assert [item["claim"]["id"] for item in other["items"]] == [ids[4], ids[0]]
    assert other["next_cursor"] is None
    # Ana's next page continues after her first.
    more = api.client.get(
        "/v1/review-queue", params={"limit": 3, "cursor": first["next_cursor"]}, headers=ana
    ).json()
    assert [item["claim"]["id"] for item in more["items"]] == []  # the rest are Bea's now
    # Asking again renews the caller's own leases.
    again = api.client.get("/v1/review-queue", params={"limit": 3}, headers=ana).json()
    assert [item["claim"]["id"] for item in again["items"]] == order


def test_expired_leases_go_back_to_the_queue(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # The store's clock is moved instead of waited on: a short real lease
    # could run out on a slow machine before the second trainer asks.
    with sessions(api)() as db:
        (claim_id,) = add_check(db, [("REFUTED", 0.9)])
    ana, bea = api.headers("trainer"), second_trainer(api)
    got = api.client.get("/v1/review-queue", headers=ana).json()["items"]
    assert [i["claim"]["id"] for i in got] == [claim_id]
    assert api.client.get("/v1/review-queue", headers=bea).json()["items"] == []
    assert_problem(review(api, claim_id, bea, 1), 409, "claim_leased")
    later = datetime.now(UTC) + timedelta(seconds=api.settings.review_lease_s + 1)
    monkeypatch.setattr(review_store, "utcnow", lambda: later)
    got = api.client.get("/v1/review-queue", headers=bea).json()["items"]
    assert [i["claim"]["id"] for i in got] == [claim_id]


def test_queue_filters(api: Api) -> None:
    with sessions(api)() as db:
        (a,) = add_check(db, [("REFUTED", 0.9)], metadata={"batch": "7", "team": "x"})
        (b,) = add_check(db, [("NOT_ENOUGH_INFO", 0.5)], corpus="other")
    trainer = api.headers("trainer")

    def ids(**params: Any) -> list[str]:
        response = api.client.get("/v1/review-queue", params=params, headers=trainer)
        assert response.status_code == 200, response.text
        found = [item["claim"]["id"] for item in response.json()["items"]]
        # Release what was leased, so each probe starts from the same queue.
        with sessions(api)() as db:
            db.execute(review_store.delete(review_store.ClaimLease))
            db.commit()
        return found

    assert ids(corpus="other") == [b]
    assert ids(verdict="REFUTED") == [a]
    assert ids(metadata="batch=7") == [a]
    assert ids(metadata=["batch=7", "team=y"]) == []
    assert ids(since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert ids(until=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == [a, b]
    assert_problem(
        api.client.get("/v1/review-queue", params={"metadata": "nokey"}, headers=trainer),
        422,
        "bad_metadata_filter",
    )
    assert_problem(
        api.client.get("/v1/review-queue", params={"cursor": "!!"}, headers=trainer),
        422,
        "bad_cursor",
    )


def test_reviews_append_with_versions_and_their_problems(api: Api) -> None:
    with sessions(api)() as db:
        claim_id, other_id = add_check(db, [("REFUTED", 0.9), ("SUPPORTED", 0.5)])
    ana = api.headers("trainer")
    done = review(api, claim_id, ana, 1, note="looks right")
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["claim_version"] == 2 and body["review_state"] == "reviewed"
    assert body["review"]["label"] == "REFUTED" and body["review"]["reviewer"] == "trainer-tester"
    assert_problem(review(api, claim_id, ana, 1), 409, "stale_version")
    corrected = review(
        api,
        claim_id,
        ana,
        2,
        action="correct",
        label="SUPPORTED",
        corrected_text="Paris is in France.",
        evidence_ids=["missed@0"],
    )
    assert corrected.status_code == 201 and corrected.json()["claim_version"] == 3
    history = api.client.get(f"/v1/claims/{claim_id}/reviews", headers=ana).json()
    assert [(r["action"], r["label"], r["claim_version"]) for r in history] == [
        ("confirm", "REFUTED", 1),
        ("correct", "SUPPORTED", 2),
    ]
    assert history[1]["evidence_ids"] == ["missed@0"]
    assert_problem(review(api, other_id, ana, 1, action="correct"), 422, "label_required")
    assert_problem(review(api, other_id, ana, 1, label="REFUTED"), 422, "label_mismatch")
    assert_problem(review(api, other_id, ana, 1, action="maybe"), 422, "validation_error")
    assert_problem(review(api, other_id, ana, 0), 422, "validation_error")
    assert_problem(review(api, "clm_nope", ana, 1), 404, "claim_not_found")
    assert_problem(api.client.get("/v1/claims/clm_nope/reviews", headers=ana), 404)
    assert_problem(review(api, other_id, api.headers("pipeline"), 1), 403, "forbidden_role")
    assert_problem(review(api, other_id, {}, 1), 401, "missing_credentials")
    # Nothing above was stored.
    assert len(api.client.get(f"/v1/claims/{other_id}/reviews", headers=ana).json()) == 0


def test_every_trainer_route_refuses_pipeline_keys(api: Api) -> None:
    pipeline = api.headers("pipeline")
    for method, path in [
        ("GET", "/v1/review-queue"),
        ("GET", "/v1/agreement"),
        ("GET", "/v1/reviews/export"),
        ("GET", "/v1/calibration"),
        ("POST", "/v1/calibration"),
        ("GET", "/v1/claims/x/reviews"),
    ]:
        assert_problem(api.client.request(method, path, headers=pipeline), 403, "forbidden_role")


def test_a_share_of_claims_goes_to_a_second_trainer(api: Api) -> None:
    with sessions(api)() as db:
        (claim_id,) = add_check(db, [("REFUTED", 0.8)], needed=2)
    ana, bea = api.headers("trainer"), second_trainer(api)
    assert review(api, claim_id, ana, 1).json()["review_state"] == "needs_second"
    assert api.client.get("/v1/review-queue", headers=ana).json()["items"] == []
    second = api.client.get("/v1/review-queue", headers=bea).json()["items"]
    assert [item["claim"]["id"] for item in second] == [claim_id]
    done = review(api, claim_id, bea, 2, action="correct", label="NOT_ENOUGH_INFO")
    assert done.json()["review_state"] == "reviewed"
    report = api.client.get("/v1/agreement", headers=ana).json()
    assert report["trainer_vs_trainer"]["doubly_reviewed"] == 1
    assert report["trainer_vs_trainer"]["observed_agreement"] == 0.0


def test_the_pipeline_marks_the_configured_share_for_a_second_review(tmp_path) -> None:
    for api in open_api(make_settings(tmp_path, double_review_share=1.0), FakeEmbedder()):
        check = api.client.post(
            "/v1/checks", json={"text": TEXT}, headers=api.headers("pipeline")
        ).json()
        with sessions(api)() as db:
            needed = {db.get(Claim, c["id"]).reviews_needed for c in check["claims"]}
        assert needed == {2}
        assert all(c["priority"] >= 0 for c in check["claims"])


def test_agreement_matches_hand_computed_figures() -> None:
    s, r, n = "SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"
    j = review_store.Judged
    judged = [
        j("1", "a", "v/1", s, {"x": s, "y": s}, s),
        j("2", "a", "v/1", s, {"x": r, "y": r}, r),
        j("3", "a", "v/1", r, {"x": r, "y": s}, s),
        j("4", "b", "v/2", r, {"x": r}, r),
        j("5", "b", "v/2", n, {"x": n}, n),
    ]
    report = agreement_report(judged)
    matrix = report["model_vs_trainer"]["confusion"]  # gold (trainer) -> predicted (model)
    assert matrix["SUPPORTED"] == {"SUPPORTED": 1, "REFUTED": 1, "NOT_ENOUGH_INFO": 0}
    assert matrix["REFUTED"] == {"SUPPORTED": 1, "REFUTED": 1, "NOT_ENOUGH_INFO": 0}
    assert matrix["NOT_ENOUGH_INFO"] == {"SUPPORTED": 0, "REFUTED": 0, "NOT_ENOUGH_INFO": 1}
    assert report["model_vs_trainer"]["accuracy"] == pytest.approx(3 / 5)
    refuted = report["model_vs_trainer"]["per_label"]["REFUTED"]
    assert (refuted["precision"], refuted["recall"]) == (0.5, 0.5)
    assert report["by_corpus"]["b"]["accuracy"] == 1.0
    assert report["by_verifier"]["v/1"]["accuracy"] == pytest.approx(1 / 3)
    # Three doubly reviewed claims: x = S, R, R; y = S, R, S.
    # p_o = 2/3; p_e = (1/3·2/3) + (2/3·1/3) = 4/9; kappa = (2/3 - 4/9) / (5/9) = 0.4.
    pair = report["trainer_vs_trainer"]
    assert pair["doubly_reviewed"] == 3
    assert pair["cohen_kappa"] == pytest.approx(0.4)
    assert metrics.cohen_kappa(["S", "S"], ["S", "S"], ["S", "R"]) == 1.0
    assert metrics.cohen_kappa([], []) is None


def test_preference_pairs_rewrite_refuted_claims() -> None:
    text = "Paris is in Germany. The Moon is made of rock."
    check = {"id": "c1", "text": text, "prompt": "p", "corpus": {}, "verifier": {}}

    def row(claim_id: str, start: int, end: int, label: str, corrected: str | None) -> dict:
        spans = [{"start": start, "end": end}]
        return {
            "check": check,
            "claim": {"id": claim_id, "text": text[start:end], "spans": spans, "position": start},
            "review": {"label": label, "corrected_text": corrected},
        }

    rows = [
        row("a", 0, 20, "REFUTED", "Paris is in France."),
        row("b", 21, 46, "SUPPORTED", None),
    ]
    (pair,) = preference_rows(iter(rows))
    assert pair["rejected"] == text
    assert pair["chosen"] == "Paris is in France. The Moon is made of rock."
    assert [(r["claim_id"], r["reward"]) for r in pair["rewards"]] == [("a", -1), ("b", 1)]
    assert list(preference_rows(iter(rows[1:]))) == []  # nothing to rewrite, no pair


def test_export_over_http_and_calibration(api: Api) -> None:
    ana = api.headers("trainer")
    with sessions(api)() as db:
        ids = add_check(db, [("REFUTED", 0.9)] * 6 + [("SUPPORTED", 0.8)] * 6)
    assert_problem(
        api.client.post("/v1/calibration", json={"corpus": "docs"}, headers=ana),
        422,
        "too_few_reviews",
    )
    for number, claim_id in enumerate(ids):
        if number % 3 == 0:
            review(api, claim_id, ana, 1, action="correct", label="NOT_ENOUGH_INFO")
        else:
            review(api, claim_id, ana, 1)
    exported = api.client.get("/v1/reviews/export", headers=ana)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert len(rows) == 12 and rows[0]["check"]["text"] == TEXT
    assert {"review", "claim", "check"} == set(rows[0])
    assert api.client.get("/v1/reviews/export", params={"corpus": "other"}, headers=ana).text == ""
    assert_problem(
        api.client.post("/v1/calibration", json={"corpus": "nope"}, headers=ana),
        404,
        "corpus_not_found",
    )
    fitted = api.client.post(
        "/v1/calibration", json={"corpus": "docs", "method": "isotonic"}, headers=ana
    )
    assert fitted.status_code == 201, fitted.text
    body = fitted.json()
    assert body["version"] == 1 and body["fitted_on"] + body["held_out"] == 12
    listed = api.client.get("/v1/calibration", params={"corpus": "docs"}, headers=ana).json()
    assert [c["id"] for c in listed] == [body["id"]]
    check = api.client.post(
        "/v1/checks",
        json={"text": "Paris is the capital of France."},
        headers=api.headers("pipeline"),
    ).json()
    assert {c["calibration_id"] for c in check["claims"] if c["verdict"]} == {body["id"]}


def _fresh_sessions(url: str) -> Any:
    store_db.upgrade(url)
    return store_db.make_session_factory(store_db.make_engine(url))


review_strategy = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(["ana", "bea", "cy"]),
        st.sampled_from(metrics.LABELS),
        st.one_of(st.none(), st.text(min_size=1, max_size=30)),
        st.one_of(st.none(), st.text(max_size=20)),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(review_strategy)
def test_export_then_import_loses_nothing(tmp_path_factory, reviews) -> None:
    root = tmp_path_factory.mktemp("roundtrip")
    source = _fresh_sessions(f"sqlite:///{root / 'a.db'}")
    with source() as db:
        ids = add_check(
            db, [("REFUTED", 0.9), ("SUPPORTED", 0.7), ("NOT_ENOUGH_INFO", 0.5), ("REFUTED", 0.6)]
        )
        for claim_index, reviewer, label, corrected, note in reviews:
            claim = review_store.get_claim(db, ids[claim_index])
            submit(
                db,
                ReviewDraft(
                    claim.id,
                    reviewer,
                    "correct",
                    Label(label),
                    claim.version,
                    corrected_text=corrected,
                    evidence_ids=("p@1",),
                    note=note,
                ),
            )
        exported = list(review_store.export_rows(db))
    target = _fresh_sessions(f"sqlite:///{root / 'b.db'}")
    with target() as db:
        assert review_store.import_rows(db, exported) == len(reviews)
        assert review_store.import_rows(db, exported) == 0  # importing twice adds nothing
        again = list(review_store.export_rows(db))

    def comparable(rows: list[dict]) -> list[dict]:
        return [{**r, "review": {**r["review"], "id": None}} for r in rows]

    assert comparable(again) == comparable(exported)
