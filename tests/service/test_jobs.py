"""Jobs: submitted over HTTP, checked by the service's worker, results read as NDJSON;
bad submissions change nothing; two workers never take the same item."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from service import jobs
from service.store import db as store_db
from service.store import jobs as job_store
from service.store.models import Job, JobItem, JobResult
from tests.factories import Api, assert_problem

ITEMS = [
    {"id": "a", "text": "The Eiffel Tower was completed in 1889. It is in Paris."},
    {"id": 2, "claims": ["Marie Curie was born in Warsaw."], "metadata": {"k": "v"}},
    {"id": "blank", "text": "   "},
]


def _job_rows(api: Api) -> int:
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        return db.scalar(select(func.count()).select_from(Job)) or 0


def _until_finished(api: Api, job_id: str, limit_s: float = 60.0) -> dict[str, Any]:
    began = time.monotonic()
    while time.monotonic() - began < limit_s:
        job = api.client.get(f"/v1/jobs/{job_id}", headers=api.headers("pipeline")).json()
        if job["status"] in ("done", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_a_job_is_checked_by_the_worker_and_its_results_read_in_order(api: Api) -> None:
    headers = {**api.headers("pipeline"), "Idempotency-Key": "run-1"}
    created = api.client.post("/v1/jobs", json={"items": ITEMS}, headers=headers)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert created.json()["items"] == 3
    job = _until_finished(api, job_id)
    assert job["status"] == "done" and job["counts"]["done"] == 2 and job["counts"]["failed"] == 1
    assert job["claims"] >= 3 and job["finished_at"]
    lines = api.client.get(f"/v1/jobs/{job_id}/results", headers=api.headers("pipeline"))
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in lines.text.splitlines()]
    assert [(r["id"], r["position"]) for r in rows] == [("a", 0), (2, 1), ("blank", 2)]
    assert rows[0]["check"]["claims"] and rows[0]["check"]["stored"] is False
    assert rows[1]["check"]["kind"] == "verify" and rows[1]["check"]["metadata"] == {"k": "v"}
    assert rows[2]["error"]["code"] == "empty_text"
    after = api.client.get(f"/v1/jobs/{job_id}/results?after=0", headers=api.headers("pipeline"))
    assert [json.loads(line)["position"] for line in after.text.splitlines()] == [1, 2]
    # The same key and body: the same job; another body with that key: a conflict.
    again = api.client.post("/v1/jobs", json={"items": ITEMS}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == job_id
    other = api.client.post("/v1/jobs", json={"items": ITEMS[:1]}, headers=headers)
    assert_problem(other, 409, "idempotency_conflict")
    # Failed items can be tried again; they fail again, the job ends again.
    retried = api.client.post(f"/v1/jobs/{job_id}/retry", headers=api.headers("pipeline"))
    assert retried.json()["status"] == "running"
    assert _until_finished(api, job_id)["counts"]["failed"] == 1
    listed = api.client.get("/v1/jobs", headers=api.headers("pipeline")).json()
    assert [j["id"] for j in listed] == [job_id]


def test_bad_submissions_are_named_and_write_nothing(api: Api) -> None:
    headers = api.headers("pipeline")
    ndjson = {**headers, "Content-Type": "application/x-ndjson"}
    lines = json.dumps(ITEMS[0]) + "\n{oops\n"
    assert (
        "line 2"
        in assert_problem(
            api.client.post("/v1/jobs", content=lines, headers=ndjson), 422, "malformed_json"
        )["detail"]
    )
    long_item = {"id": "x", "text": "word " * 10_000}
    assert (
        "item 2"
        in assert_problem(
            api.client.post("/v1/jobs", json={"items": [ITEMS[0], long_item]}, headers=headers),
            422,
            "invalid_item",
        )["detail"]
    )
    repeated = [ITEMS[0], {**ITEMS[1], "id": "a"}]
    assert (
        "repeated"
        in assert_problem(
            api.client.post("/v1/jobs", json={"items": repeated}, headers=headers),
            422,
            "invalid_item",
        )["detail"]
    )
    assert_problem(
        api.client.post(
            "/v1/jobs", json={"items": [{**ITEMS[0], "corpus": "nope"}]}, headers=headers
        ),
        422,
        "unknown_corpus",
    )
    assert_problem(
        api.client.post("/v1/jobs", content="x", headers={**headers, "Content-Type": "text/csv"}),
        415,
    )
    assert _job_rows(api) == 0
    # NDJSON that is fine is a job.
    good = "".join(json.dumps(i) + "\n" for i in ITEMS[:2])
    created = api.client.post("/v1/jobs?top_k=2", content=good, headers=ndjson)
    assert created.status_code == 201 and created.json()["top_k"] == 2
    cancelled = api.client.post(
        f"/v1/jobs/{created.json()['id']}/cancel", headers=api.headers("pipeline")
    )
    assert cancelled.json()["status"] in ("cancelled", "done")


@pytest.fixture
def queue(migrated_url: str) -> Iterator[Callable[[int], Any]]:
    """Queue a job of ``count`` bare items on a fresh store; its session factory."""
    engine = store_db.make_engine(migrated_url)
    yield lambda count: _queue(store_db.make_session_factory(engine), count)
    engine.dispose()


def _queue(sessions: Any, count: int) -> Any:
    with sessions() as db:
        job = Job(id="job_t", status="queued", body_sha256="x", items=count, metadata_={})
        items = [
            JobItem(position=n, item_id=str(n), payload={}, state="queued", attempts=0, claims=0)
            for n in range(count)
        ]
        job_store.create_job(db, job, items)
    return sessions


def test_two_workers_share_a_job_and_no_item_is_done_twice(queue) -> None:
    sessions = queue(120)
    held: dict[int, str] = {}
    twice: list[int] = []
    lock = threading.Lock()

    deadline = time.monotonic() + 60  # a job left running must fail the test, not hang it

    def work(name: str) -> None:
        while time.monotonic() < deadline:
            with sessions() as db:
                leased = job_store.lease_items(db, name, 7, 60)
                if not leased:  # the other worker won these; done when nothing is left
                    if job_store.get_job(db, "job_t").status == "done":
                        return
                    continue
            with lock:
                for item in leased:
                    if item.id in held:
                        twice.append(item.id)
                    held[item.id] = name
            time.sleep(0.01)  # the other worker leases meanwhile
            outcomes = [
                job_store.Outcome(i.id, {"id": i.item_id, "by": name}, 1, "done") for i in leased
            ]
            with sessions() as db:
                assert job_store.finish_items(db, name, outcomes) == len(leased)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert twice == []
    assert set(held.values()) == {"w1", "w2"}  # both took part
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(JobResult)) == 120
        assert db.scalar(select(Job.status).where(Job.id == "job_t")) == "done"
        assert [r.position for r in job_store.results(db, "job_t")] == list(range(120))


def test_a_lease_that_ran_out_is_taken_again_and_its_late_result_is_dropped(queue) -> None:
    sessions = queue(3)
    with sessions() as db:
        first = job_store.lease_items(db, "dead", 10, 0.01)
    time.sleep(0.05)
    with sessions() as db:
        second = job_store.lease_items(db, "alive", 10, 60)
    assert [i.id for i in second] == [i.id for i in first]
    late = [job_store.Outcome(i.id, {"id": i.item_id, "by": "dead"}, 1, "done") for i in first]
    with sessions() as db:
        assert job_store.finish_items(db, "dead", late) == 0
        kept = [
            job_store.Outcome(i.id, {"id": i.item_id, "by": "alive"}, 1, "done") for i in second
        ]
        assert job_store.finish_items(db, "alive", kept) == 3
        bodies = [r.body["by"] for r in job_store.results(db, "job_t")]
    assert bodies == ["alive"] * 3


def test_an_item_whose_workers_keep_dying_fails_instead_of_looping(queue) -> None:
    sessions = queue(1)
    for _ in range(3):
        with sessions() as db:
            assert len(job_store.lease_items(db, "doomed", 5, 0.01, max_attempts=3)) == 1
        time.sleep(0.03)
    with sessions() as db:
        assert job_store.lease_items(db, "next", 5, 60, max_attempts=3) == []
        (result,) = job_store.results(db, "job_t")
        assert result.body["error"]["code"] == "worker_lost"
        assert job_store.get_job(db, "job_t").status == "done"


def test_results_wait_for_the_items_before_them_so_a_cursor_skips_nothing(queue) -> None:
    sessions = queue(4)
    with sessions() as db:
        slow = job_store.lease_items(db, "slow", 1, 60)  # holds position 0
        fast = job_store.lease_items(db, "fast", 3, 60)  # positions 1-3
        done = [job_store.Outcome(i.id, {"id": i.item_id}, 1, "done") for i in fast]
        assert job_store.finish_items(db, "fast", done) == 3
        assert job_store.results(db, "job_t") == []  # position 0 is still being checked
        late = [job_store.Outcome(i.id, {"id": i.item_id}, 1, "done") for i in slow]
        assert job_store.finish_items(db, "slow", late) == 1
        assert [r.position for r in job_store.results(db, "job_t", after=-1, limit=2)] == [0, 1]
        assert [r.position for r in job_store.results(db, "job_t", after=1)] == [2, 3]


class _Receiver(BaseHTTPRequestHandler):
    """A callback receiver on loopback: fails the first try, takes the second."""

    calls: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.calls.append((dict(self.headers), body))
        self.send_response(500 if len(self.calls) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_finished_job_tells_its_callback_signed_and_tries_again(queue) -> None:
    _Receiver.calls = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    sessions = queue(2)
    with sessions() as db:
        job = job_store.get_job(db, "job_t")
        job.callback_url, job.metadata_ = url, {"run": 7}
        db.commit()
        leased = job_store.lease_items(db, "w", 5, 60)
        outcomes = [
            job_store.Outcome(
                i.id, {"id": i.item_id, "error": {"code": "x", "message": "m"}}, 0, "failed"
            )
            for i in leased
        ]
        job_store.finish_items(db, "w", outcomes)
    callbacks = jobs.Callbacks("s3cret", attempts=3, backoff_s=0.05)
    try:
        assert callbacks.deliver_one(sessions)  # 500: tried again after the backoff
        assert not callbacks.deliver_one(sessions)  # not due yet
        time.sleep(0.1)
        assert callbacks.deliver_one(sessions)
        assert not callbacks.deliver_one(sessions)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Receiver.calls) == 2
    headers, body = _Receiver.calls[1]
    stamp, mac = headers["Claimsieve-Signature"].split(",")
    expected = hmac.new(b"s3cret", f"{stamp[2:]}.".encode() + body, hashlib.sha256).hexdigest()
    assert mac == f"v1={expected}" and headers["Claimsieve-Delivery"] == "job_t.2"
    sent = json.loads(body)
    assert sent["job"]["id"] == "job_t" and sent["job"]["metadata"] == {"run": 7}
    assert sent["summary"]["items"] == 2 and sent["summary"]["failed"] == 2
    with sessions() as db:
        job = job_store.get_job(db, "job_t")
        assert (job.callback_state, job.callback_attempts) == ("sent", 2)


def test_a_callback_needs_the_services_secret_and_a_summary_is_served(api: Api) -> None:
    headers = api.headers("pipeline")
    body = {"items": ITEMS[:1], "callback_url": "http://127.0.0.1:9/hook"}
    assert_problem(api.client.post("/v1/jobs", json=body, headers=headers), 422, "callbacks_off")
    assert _job_rows(api) == 0
    job_id = api.client.post("/v1/jobs", json={"items": ITEMS[:2]}, headers=headers).json()["id"]
    _until_finished(api, job_id)
    summary = api.client.get(f"/v1/jobs/{job_id}/summary", headers=headers).json()
    assert summary["items"] == 2 and summary["failed"] == 0 and summary["claims"] >= 2
    assert sum(summary["verdicts"].values()) <= summary["claims"] and summary["seconds"] >= 0
    picture = api.client.get(f"/v1/jobs/{job_id}/factuality.png", headers=headers)
    assert picture.headers["content-type"] == "image/png" and picture.content[:4] == b"\x89PNG"
