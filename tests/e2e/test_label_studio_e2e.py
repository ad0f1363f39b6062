"""A real Label Studio 1.23.2 connected to the real service: predictions, then an annotation
that comes back by webhook as a stored review.

What it did is written to bench/results/e2e/label-studio.log (CI prints it).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RESULTS, LabelStudio, Service

TASKS = [
    # An emoji before the claims: Label Studio's offsets are code points.
    {
        "response": "🗼 Python lists are immutable. The for statement iterates over the items "
        "of a sequence."
    },  # fmt: skip
    {"response": "Tuples are immutable sequences. A dictionary maps keys to values."},
]

pytestmark = [pytest.mark.models, pytest.mark.slow, pytest.mark.e2e]


def note(line: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "label-studio.log").open("a", encoding="utf-8") as log:
        log.write(f"{time.strftime('%H:%M:%S')} {line}\n")


def until(what: str, probe: Any, limit: float = 60.0) -> Any:
    began = time.monotonic()
    while time.monotonic() - began < limit:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what}: nothing after {limit} s")


def test_label_studio_predicts_and_annotations_become_reviews(
    service: Service, label_studio: LabelStudio, request: pytest.FixtureRequest
) -> None:
    (RESULTS / "label-studio.log").unlink(missing_ok=True)
    ls = httpx.Client(base_url=label_studio.url, headers=label_studio.headers, timeout=120)
    request.addfinalizer(ls.close)
    backend = f"{service.url}/integrations/label-studio"
    config = httpx.get(f"{backend}/config", timeout=10).text

    project = ls.post("/api/projects", json={"title": "claimsieve e2e", "label_config": config})
    assert project.status_code == 201, project.text
    pid = project.json()["id"]
    imported = ls.post(f"/api/projects/{pid}/import", json=TASKS)
    assert imported.status_code == 201, imported.text
    tasks = sorted(
        ls.get("/api/tasks", params={"project": pid}).json()["tasks"], key=lambda t: t["id"]
    )
    note(f"project {pid}: {len(tasks)} tasks imported")

    connected = ls.post(
        "/api/ml",
        json={
            "url": backend,
            "project": pid,
            "title": "claimsieve",
            "auth_method": "BASIC_AUTH",
            "basic_auth_user": "label-studio",
            "basic_auth_pass": service.keys["label-studio"],
        },
    )
    assert connected.status_code == 201, connected.text
    assert connected.json()["readable_state"] == "Connected", connected.json()
    version = connected.json()["model_version"]
    note(f"backend connected, model_version {version}")

    retrieved = ls.post(
        "/api/dm/actions",
        params={"id": "retrieve_tasks_predictions", "project": pid},
        json={"selectedItems": {"all": True, "excluded": []}},
    )
    assert retrieved.status_code == 200, retrieved.text
    note(f"retrieve predictions: {retrieved.json()}")

    predictions = {}
    for task in tasks:
        made = ls.get("/api/predictions", params={"task": task["id"]}).json()
        assert len(made) == 1, made
        predictions[task["id"]] = made[0]
        text = task["data"]["response"]
        regions = [r for r in made[0]["result"] if r["type"] == "labels"]
        assert regions, made[0]
        for region in regions:
            value = region["value"]
            assert text[value["start"] : value["end"]] == value["text"], value
        assert made[0]["model_version"] == version
        note(
            f"task {task['id']}: prediction created, "
            + "; ".join(f"{r['value']['text']!r} {r['value']['labels'][0]}" for r in regions)
        )

    first = tasks[0]
    regions = [r for r in predictions[first["id"]]["result"] if r["type"] == "labels"]
    lists = next(r for r in regions if r["value"]["text"] == "Python lists are immutable")
    assert lists["value"]["start"] == first["data"]["response"].index("Python")
    assert lists["value"]["labels"] == ["Refuted"], lists

    hook = ls.post(
        "/api/webhooks",
        json={
            "project": pid,
            "url": f"{backend}/webhook",
            "send_payload": True,
            "send_for_all_actions": False,
            "actions": ["ANNOTATION_CREATED", "ANNOTATION_UPDATED"],
            "headers": {"Authorization": f"Bearer {service.keys['ls-webhook']}"},
        },
    )
    assert hook.status_code == 201, hook.text

    # The trainer keeps "Refuted" on the false claim and calls the true one "Not enough info".
    result = json.loads(json.dumps(predictions[first["id"]]["result"]))
    changed = next(
        r for r in result if r["type"] == "labels" and r["value"]["text"].startswith("The for")
    )
    changed["value"]["labels"] = ["Not enough info"]
    annotated = ls.post(f"/api/tasks/{first['id']}/annotations", json={"result": result})
    assert annotated.status_code == 201, annotated.text
    note(f"annotation {annotated.json()['id']} posted through Label Studio's API")

    trainer = {"Authorization": f"Bearer {service.keys['ls-webhook']}"}

    def processed() -> Any:
        rows = httpx.get(f"{backend}/deliveries", headers=trainer, timeout=10).json()
        return [r for r in rows if r["state"] == "done" and r["outcome"].get("reviews")]

    delivery = until("the webhook's delivery processed", processed)[0]
    made = {r["label"]: r for r in delivery["outcome"]["reviews"]}
    assert made["REFUTED"]["action"] == "confirm", delivery
    assert made["NOT_ENOUGH_INFO"]["action"] == "correct", delivery
    for review in delivery["outcome"]["reviews"]:
        history = httpx.get(
            f"{service.url}/v1/claims/{review['claim']}/reviews", headers=trainer, timeout=10
        ).json()
        assert [h["label"] for h in history] == [review["label"]], history
        assert history[0]["reviewer"].startswith("ls-webhook:user-")
        note(f"review stored: claim {review['claim']} {review['action']} {review['label']}")
    # Label Studio's tokens never reach the service's log.
    assert label_studio.token not in service.log.read_text()
