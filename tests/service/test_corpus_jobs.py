"""Corpus changes as jobs: a large upload or a rebuild answers 202 with a job that reports
its progress, keeps the upload until the change is recorded, and is made again when its
worker dies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from service.store import jobs as job_store
from service.store.models import Job, JobItem, utcnow
from tests.factories import Api, FakeEmbedder, assert_problem, make_settings, open_api

DOCUMENTS = [
    {"id": f"moon-{n}", "title": "Moon", "text": f"The Moon fact number {n} is about craters."}
    for n in range(3)
]


def _finished(api: Api, location: str, limit_s: float = 60.0) -> dict[str, Any]:
    began = time.monotonic()
    while time.monotonic() - began < limit_s:
        job = api.client.get(location, headers=api.headers("admin")).json()
        if job["status"] in ("done", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"{location} did not finish: {job}")


def _jobs(api: Api) -> int:
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        return db.scalar(select(func.count()).select_from(Job)) or 0


def _result(api: Api, job_id: str) -> dict[str, Any]:
    lines = api.client.get(f"/v1/jobs/{job_id}/results", headers=api.headers("admin")).text
    (row,) = [json.loads(line) for line in lines.splitlines()]
    return row  # type: ignore[no-any-return]


def test_an_upload_in_the_background_is_a_job_that_reports_its_progress(api: Api) -> None:
    admin = api.headers("admin")
    queued = api.client.post(
        "/v1/corpora/docs/documents?background=true", json=DOCUMENTS, headers=admin
    )
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["kind"] == "corpus" and job["items"] == 1 and job["corpus"] == "docs"
    assert job["progress"] == {"stage": "queued", "done": 0, "total": 3}
    assert queued.headers["location"] == f"/v1/jobs/{job['id']}"
    done = _finished(api, queued.headers["location"])
    assert done["counts"]["done"] == 1
    assert done["progress"] == {"stage": "done", "done": 3, "total": 3}
    change = _result(api, job["id"])["change"]
    assert change["corpus"] == "docs" and change["added"] == 3
    listed = api.client.get("/v1/corpora/docs/documents", headers=admin).json()
    assert {"moon-0", "moon-1", "moon-2"} <= {d["id"] for d in listed["documents"]}
    # The upload was kept until the change was recorded, and not after.
    uploads = api.settings.data_dir / "uploads"
    assert not list(uploads.glob("*"))
    events = api.client.get("/v1/audit", headers=admin).json()
    assert any(e["action"] == "corpus.documents.add" and e["details"].get("job") for e in events)


def test_a_rebuild_in_the_background_makes_a_new_version(api: Api) -> None:
    admin = api.headers("admin")
    before = api.client.get("/v1/corpora/docs", headers=admin).json()["version"]
    queued = api.client.post("/v1/corpora/docs/rebuild?background=true", headers=admin)
    assert queued.status_code == 202, queued.text
    _finished(api, queued.headers["location"])
    change = _result(api, queued.json()["id"])["change"]
    assert change["version"] == before + 1
    assert api.client.get("/v1/corpora/docs", headers=admin).json()["version"] == before + 1


def test_bad_changes_are_refused_before_any_job_is_made(api: Api) -> None:
    admin = api.headers("admin")
    missing = api.client.post(
        "/v1/corpora/nowhere/documents?background=true", json=DOCUMENTS, headers=admin
    )
    assert_problem(missing, 404, "corpus_not_found")
    bad = api.client.post(
        "/v1/corpora/docs/documents?background=true",
        json=[*DOCUMENTS, {"id": "x", "text": ""}],
        headers=admin,
    )
    assert bad.status_code == 422
    refused = api.client.post(
        "/v1/corpora/docs/documents?background=true",
        json=DOCUMENTS,
        headers=api.headers("pipeline"),
    )
    assert_problem(refused, 403, "forbidden_role")
    assert _jobs(api) == 0
    assert not list((api.settings.data_dir / "uploads").glob("*"))


def test_a_change_whose_worker_died_is_made_again(api: Api) -> None:
    app = api.client.app
    admin = api.headers("admin")
    with app.state.sessions() as db:  # type: ignore[attr-defined]
        from service import jobs

        uploads = api.settings.data_dir / "uploads"
        job = jobs.submit_change(db, uploads, "docs", [], "test", total=0)
        # A worker took it and died: its lease runs out with nothing recorded.
        db.execute(
            update(JobItem)
            .where(JobItem.job_id == job.id)
            .values(state="leased", leased_by="dead", attempts=1, lease_until=utcnow())
        )
        db.commit()
        job_id = job.id
    done = _finished(api, f"/v1/jobs/{job_id}")
    assert done["counts"]["done"] == 1
    with app.state.sessions() as db:  # type: ignore[attr-defined]
        item = db.scalars(select(JobItem).where(JobItem.job_id == job_id)).one()
        assert item.attempts == 2 and item.leased_by != "dead"
        # The dead worker's progress reports are refused: it must stop.
        assert not job_store.report_progress(db, item.id, "dead", 60, {"stage": "x"})
    assert _result(api, job_id)["change"]["corpus"] == "docs"
    assert api.client.get(f"/v1/jobs/{job_id}", headers=admin).json()["kind"] == "corpus"


def test_an_upload_above_the_limit_is_queued_without_asking(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, corpus_job_documents=3)
    for api in open_api(settings, FakeEmbedder()):
        admin = api.headers("admin")
        small = api.client.post("/v1/corpora/docs/documents", json=DOCUMENTS[:2], headers=admin)
        assert small.status_code == 201, small.text
        more = [*DOCUMENTS, {"id": "moon-3", "title": "Moon", "text": "It has no air."}]
        large = api.client.post("/v1/corpora/docs/documents", json=more, headers=admin)
        assert large.status_code == 202, large.text
        assert _finished(api, large.headers["location"])["progress"]["done"] == 4


def test_a_change_whose_upload_is_gone_fails_with_its_reason(api: Api) -> None:
    app = api.client.app
    gone = api.settings.data_dir / "uploads" / "gone.jsonl"
    change = {"action": "add", "corpus": "docs", "upload": str(gone), "reembed": False}
    job = Job(
        id="job_gone",
        kind="corpus",
        status="queued",
        corpus="docs",
        body_sha256="-",
        items=1,
        metadata_={},
        callback_attempts=0,
    )
    item = JobItem(position=0, item_id="change", payload={**change, "documents": 1}, state="queued")
    with app.state.sessions() as db:  # type: ignore[attr-defined]
        job_store.create_job(db, job, [item])
    done = _finished(api, "/v1/jobs/job_gone")
    assert done["counts"]["failed"] == 1
    assert _result(api, "job_gone")["error"]["code"] == "upload_lost"
