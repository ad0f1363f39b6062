"""The Label Studio ML backend over the API: setup, predictions, webhooks becoming reviews.

The real Label Studio drives the same routes in tests/e2e/test_label_studio_e2e.py.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from service.integrations import label_studio as ls
from service.store.models import Check, Claim, ClaimLease, Delivery, Review, utcnow
from tests.factories import Api, assert_problem

# An emoji before the claims: offsets are code points, as Python indexes a str.
TEXT = "🗼 The Eiffel Tower is in Paris. Marie Curie was born in Warsaw in 1867."
CONFIG = ls.shipped_config()


def basic(api: Api, role: str) -> dict[str, str]:
    token = base64.b64encode(f"label-studio:{api.keys[role]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def predict(api: Api, tasks: list[dict[str, Any]], role: str = "pipeline") -> Any:
    body = {"tasks": tasks, "project": "7.1765000000", "label_config": CONFIG, "params": {}}
    return api.client.post(
        "/integrations/label-studio/predict", json=body, headers=basic(api, role)
    )


def deliveries(api: Api) -> list[dict[str, Any]]:
    response = api.client.get(
        "/integrations/label-studio/deliveries", headers=api.headers("trainer")
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def wait_processed(api: Api, delivery: int, limit: float = 20.0) -> dict[str, Any]:
    began = time.monotonic()
    while time.monotonic() - began < limit:
        found = next(d for d in deliveries(api) if d["id"] == delivery)
        if found["state"] != "pending":
            return found
        time.sleep(0.1)
    pytest.fail(f"delivery {delivery} still pending: {found}")


def annotation(
    prediction: dict[str, Any], labels: dict[str, str], annotation_id: int = 31
) -> dict[str, Any]:
    """A webhook body as Label Studio sends it: the predicted regions, relabelled."""
    result = []
    for item in prediction["result"]:
        item = json.loads(json.dumps(item))
        if item["type"] == "labels" and item["value"]["text"] in labels:
            item["value"]["labels"] = [labels[item["value"]["text"]]]
        result.append(item)
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": {
            "id": annotation_id,
            "task": 101,
            "project": 7,
            "completed_by": 3,
            "updated_at": "2026-12-07T05:00:00Z",
            "result": result,
        },
        "task": {"id": 101, "data": {"response": TEXT}},
        "project": {"id": 7, "token": "project-token-never-kept"},
    }


def webhook(api: Api, body: Any, headers: dict[str, str] | None = None) -> Any:
    return api.client.post(
        "/integrations/label-studio/webhook",
        json=body,
        headers=headers if headers is not None else api.headers("trainer"),
    )


def test_config_names_and_defaults() -> None:
    config = ls.parse_config(CONFIG)
    assert (config.text_name, config.data_key, config.labels_name) == (
        "response",
        "response",
        "claim_verdict",
    )
    assert (config.rationale_name, config.overall_name) == ("rationale", "overall")
    assert config.verdict_of("Refuted") == "REFUTED"
    assert config.verdict_of("not enough info") == "NOT_ENOUGH_INFO"
    other = ls.parse_config(
        '<View><Text name="t" value="$answer"/><Labels name="v" toName="t">'
        '<Label value="TRUE"/><Label value="FALSE"/><Label value="Unverifiable"/></Labels></View>'
    )
    assert (other.data_key, other.label_value(ls.Label.REFUTED)) == ("answer", "FALSE")
    assert other.rationale_name is None and other.overall_name is None


def test_setup_is_idempotent_and_follows_the_corpus_version(api: Api) -> None:
    url = "/integrations/label-studio/setup"
    body = {"project": "7.1765000000", "schema": CONFIG, "access_token": "ls-user-token"}
    first = api.client.post(url, json=body, headers=basic(api, "pipeline"))
    again = api.client.post(url, json=body, headers=basic(api, "pipeline"))
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json()
    assert "ls-user-token" not in first.text
    added = api.client.post(
        "/v1/corpora/docs/documents",
        json=[{"id": "moon", "text": "The Moon orbits the Earth."}],
        headers=api.headers("admin"),
    )
    assert added.status_code == 201, added.text
    moved = api.client.post(url, json=body, headers=basic(api, "pipeline"))
    assert moved.json()["model_version"] != first.json()["model_version"]
    assert api.client.get("/integrations/label-studio/health").json()["status"] == "UP"


def test_predictions_are_regions_with_code_point_offsets(api: Api) -> None:
    tasks = [
        {"id": 101, "data": {"response": TEXT}},
        {"id": 102, "data": {"response": "   "}},  # nothing to check: an empty prediction
    ]
    response = predict(api, tasks)
    assert response.status_code == 200, response.text
    first, empty = response.json()["results"]
    assert empty["result"] == []
    regions = [r for r in first["result"] if r["type"] == "labels"]
    curie = next(r["value"] for r in regions if r["value"]["text"].startswith("Marie Curie"))
    assert curie["start"] == TEXT.index("Marie Curie")  # the emoji counts as one
    for region in regions:
        value = region["value"]
        assert TEXT[value["start"] : value["end"]] == value["text"]
        assert value["labels"][0] in ("Supported", "Refuted", "Not enough info")
        assert region["from_name"] == "claim_verdict" and region["to_name"] == "response"
        assert 0 <= region["score"] <= 1
        rationale = next(
            r for r in first["result"] if r["type"] == "textarea" and r["id"] == region["id"]
        )
        assert rationale["value"]["start"] == value["start"]
        assert "Evidence (" in rationale["value"]["text"][0]
    overall = [r for r in first["result"] if r["type"] == "choices"]
    assert len(overall) == 1 and overall[0]["from_name"] == "overall"
    assert first["model_version"].startswith("claimsieve-")
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        linked = ls.deliveries.task_check(db, 7, 101)
    assert linked is not None
    check = api.client.get(f"/v1/checks/{linked}", headers=api.headers("admin")).json()
    assert check["metadata"] == {"label_studio": {"project": 7, "task": 101}}


def test_backend_routes_need_a_key_when_auth_is_on(api: Api) -> None:
    tasks = [{"id": 1, "data": {"response": TEXT}}]
    body = {"tasks": tasks, "label_config": CONFIG}
    url = "/integrations/label-studio/predict"
    assert_problem(api.client.post(url, json=body), 401, "missing_credentials")
    bad = {"Authorization": "Basic " + base64.b64encode(b"x:not-a-key").decode()}
    assert_problem(api.client.post(url, json=body, headers=bad), 401, "invalid_credentials")
    assert_problem(api.client.post(url, json=body, headers=basic(api, "trainer")), 403)
    assert_problem(webhook(api, {"action": "ANNOTATION_CREATED"}, {}), 401)
    assert_problem(webhook(api, {"action": "ANNOTATION_CREATED"}, api.headers("pipeline")), 403)


def test_bad_input_is_a_problem_and_keeps_nothing(api: Api) -> None:
    url = "/integrations/label-studio/predict"
    broken = {"tasks": [{"id": 1, "data": {"response": TEXT}}], "label_config": "<View><Text"}
    assert_problem(
        api.client.post(url, json=broken, headers=basic(api, "pipeline")), 422, "bad_label_config"
    )
    no_labels = {**broken, "label_config": '<View><Text name="t" value="$t"/></View>'}
    assert_problem(
        api.client.post(url, json=no_labels, headers=basic(api, "pipeline")),
        422,
        "bad_label_config",
    )
    assert_problem(api.client.post(url, json={"tasks": "x"}, headers=basic(api, "pipeline")), 422)
    assert_problem(webhook(api, {"action": "ANNOTATION_CREATED", "annotation": {}}), 422)
    assert_problem(
        webhook(api, {"action": "ANNOTATION_CREATED", "annotation": {"id": 1, "task": 2}}), 422
    )
    not_json = api.client.post(
        "/integrations/label-studio/webhook",
        content=b"{not json",
        headers={**api.headers("trainer"), "Content-Type": "application/json"},
    )
    assert_problem(not_json, 422)
    assert deliveries(api) == []
    ignored = webhook(api, {"action": "TASKS_CREATED", "tasks": [{"id": 1}]})
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert deliveries(api) == []


def reviews_of(api: Api) -> list[Review]:
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        return list(db.scalars(select(Review).order_by(Review.id)))


def test_an_annotation_becomes_reviews_once(api: Api) -> None:
    predicted = predict(api, [{"id": 101, "data": {"response": TEXT}}]).json()["results"][0]
    regions = [r for r in predicted["result"] if r["type"] == "labels"]
    flipped = regions[0]["value"]["text"]
    before = regions[0]["value"]["labels"][0]
    after = "Refuted" if before != "Refuted" else "Supported"
    body = annotation(predicted, {flipped: after})

    sent = webhook(api, body)
    assert sent.status_code == 200 and sent.json()["status"] == "queued", sent.text
    done = wait_processed(api, sent.json()["delivery"])
    assert done["state"] == "done", done
    made = done["outcome"]["reviews"]
    assert len(made) == len(regions)
    assert sorted(m["action"] for m in made) == ["confirm"] * (len(regions) - 1) + ["correct"]
    stored = reviews_of(api)
    assert len(stored) == len(regions)
    corrected = next(r for r in stored if r.action == "correct")
    assert corrected.label == after.upper() and corrected.reviewer == "trainer-tester:user-3"

    # Redelivered: recognised, nothing new.
    again = webhook(api, body)
    assert again.json() == {"status": "duplicate", "delivery": sent.json()["delivery"]}
    # Updated without a change: the claims are not reviewed again.
    body["action"] = "ANNOTATION_UPDATED"
    body["annotation"]["updated_at"] = "2026-12-07T05:01:00Z"
    updated = wait_processed(api, webhook(api, body).json()["delivery"])
    assert updated["outcome"]["reviews"] == [] and updated["outcome"]["unchanged"] == len(regions)
    assert len(reviews_of(api)) == len(regions)
    # The project's token was never kept.
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        kept = [json.dumps(d.payload) for d in db.scalars(select(Delivery))]
    assert kept and not any("project-token-never-kept" in k for k in kept)


def test_a_delivery_processed_twice_records_each_review_once(api: Api) -> None:
    """As after a crash between two claims: the second pass finds what the first wrote."""
    predicted = predict(api, [{"id": 101, "data": {"response": TEXT}}]).json()["results"][0]
    regions = [r for r in predicted["result"] if r["type"] == "labels"]
    body = annotation(predicted, {regions[0]["value"]["text"]: "Not enough info"})
    action, payload = ls.kept_payload(body)
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        row = Delivery(
            source=ls.SOURCE,
            key=ls.delivery_key(action, payload),
            action=action,
            payload=payload,
            sender="trainer-tester",
            state="done",  # kept away from the app's own worker
            attempts=1,
            not_before=utcnow(),
            outcome={},
        )
        db.add(row)
        db.commit()
        first = ls.apply_annotation(db, row)
        # The same claims reviewed again from the same delivery, by someone who erased the
        # record of the first pass: the unique source still stops a second review.
        db.execute(Review.__table__.update().values(reviewer="someone-else"))
        db.commit()
        second = ls.apply_annotation(db, row)
    assert len(first["reviews"]) == len(regions)
    assert len(second["reviews"]) == len(regions)  # answered from the kept reviews
    assert len(reviews_of(api)) == len(regions)


def test_a_claim_leased_in_the_queue_waits_and_is_not_lost(api: Api) -> None:
    predicted = predict(api, [{"id": 101, "data": {"response": TEXT}}]).json()["results"][0]
    regions = [r for r in predicted["result"] if r["type"] == "labels"]
    region = regions[0]
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        claim = next(c for c in db.scalars(select(Claim)) if ls.region_id(c.id) == region["id"])
        claim_id = claim.id
        until = utcnow() + timedelta(seconds=5)
        db.add(ClaimLease(claim_id=claim_id, holder="bea", expires_at=until))
        db.commit()
    sent = webhook(api, annotation(predicted, {}))
    delivery = sent.json()["delivery"]
    began = time.monotonic()
    while True:  # the worker meets the lease and puts the delivery off, keeping it
        waiting = next(d for d in deliveries(api) if d["id"] == delivery)
        if "waiting" in waiting["outcome"] or time.monotonic() - began > 4.5:
            break
        time.sleep(0.1)
    assert waiting["state"] == "pending" and "leased" in waiting["outcome"]["waiting"], waiting
    done = wait_processed(api, delivery, limit=30)
    assert done["state"] == "done" and len(done["outcome"]["reviews"]) == len(regions)
    assert claim_id in {r.claim_id for r in reviews_of(api)}


def test_start_training_recalibrates_or_says_why_not(api: Api) -> None:
    predict(api, [{"id": 101, "data": {"response": TEXT}}])
    # Label Studio's "Start training" comes with the backend connection's (pipeline) key.
    sent = webhook(api, {"action": "START_TRAINING", "project": {"id": 7}}, basic(api, "pipeline"))
    done = wait_processed(api, sent.json()["delivery"])
    assert done["state"] == "done"
    assert "docs" in done["outcome"]["calibrated"]
    assert "error" in done["outcome"]["calibrated"]["docs"]  # too few reviews yet


def test_the_label_config_ships_and_is_served(api: Api) -> None:
    served = api.client.get("/integrations/label-studio/config")
    assert served.status_code == 200 and served.text == CONFIG


def test_a_webhook_for_a_deleted_check_is_acknowledged_and_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    predicted = predict(api, [{"id": 101, "data": {"response": TEXT}}]).json()["results"][0]
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        for check in db.scalars(select(Check)):
            db.delete(check)
        db.commit()
    with caplog.at_level("INFO", logger="claimsieve"):
        sent = webhook(api, annotation(predicted, {}))
        assert sent.status_code == 200, sent.text
        done = wait_processed(api, sent.json()["delivery"])
    assert done["state"] == "done" and "skipped" in done["outcome"], done
    assert any("no prediction of this task" in r.getMessage() for r in caplog.records)
    assert reviews_of(api) == []
