"""Twenty trainers review the same fifty claims for thirty seconds, over HTTP, on PostgreSQL.

Every accepted review (2xx) must be in the history, and nothing else; a stale
``expected_version`` must always be a 409; and no claim may be handed out by
the queue to a second trainer while the first one certainly still holds it.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.store import keys as key_store
from service.store.models import Claim, Review
from tests.factories import FakeEmbedder, add_check, make_settings
from tests.processes import free_port

TRAINERS = 20
CLAIMS = 50
SECONDS = 30.0


@dataclass
class Handout:
    claim_id: str
    holder: str
    sent: float
    received: float
    review_sent: float | None = None


@dataclass
class Log:
    accepted: list[tuple[str, int]] = field(default_factory=list)  # (claim, review id)
    stale_ok: int = 0
    conflicts: int = 0
    handouts: list[Handout] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def trainer(base: str, key: str, name: str, claim_ids: list[str], log: Log, stop: float) -> None:
    rng = random.Random(name)
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:

        def post_review(claim_id: str, version: int) -> httpx.Response:
            body = {"action": "correct", "label": rng.choice(["SUPPORTED", "REFUTED"]),
                    "expected_version": version}  # fmt: skip
            return http.post(f"/v1/claims/{claim_id}/reviews", json=body)

        while time.monotonic() < stop:
            choice = rng.random()
            if choice < 0.4:  # work the queue
                sent = time.monotonic()
                response = http.get("/v1/review-queue", params={"limit": 2})
                received = time.monotonic()
                if response.status_code != 200:
                    log.errors.append(f"queue {response.status_code}")
                    continue
                for item in response.json()["items"]:
                    handout = Handout(item["claim"]["id"], name, sent, received)
                    with log.lock:
                        log.handouts.append(handout)
                    handout.review_sent = time.monotonic()
                    done = post_review(item["claim"]["id"], item["claim"]["version"])
                    record(log, done, item["claim"]["id"])
            else:  # review a claim straight from its page
                claim_id = rng.choice(claim_ids)
                page = http.get(f"/v1/claims/{claim_id}")
                version = page.json()["version"]
                if choice < 0.55:  # a deliberately stale write
                    if version > 1:
                        stale = post_review(claim_id, version - 1)
                        with log.lock:
                            if stale.status_code == 409:
                                log.stale_ok += 1
                            else:
                                log.errors.append(f"stale write got {stale.status_code}")
                    continue
                record(log, post_review(claim_id, version), claim_id)


def record(log: Log, response: httpx.Response, claim_id: str) -> None:
    with log.lock:
        if response.status_code == 201:
            log.accepted.append((claim_id, response.json()["review"]["id"]))
        elif response.status_code == 409 and response.headers["content-type"].startswith(
            "application/problem+json"
        ):
            log.conflicts += 1
        else:
            log.errors.append(f"review {response.status_code} {response.text[:200]}")


@pytest.mark.postgres
@pytest.mark.slow
def test_twenty_trainers_lose_nothing_and_never_share_a_lease(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url, review_lease_s=5.0)
    app = create_app(settings, embedder=FakeEmbedder())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        sessions = app.state.sessions
        with sessions() as db:
            keys = [key_store.create_key(db, f"t{i}", "trainer")[1] for i in range(TRAINERS)]
            # Half want a second opinion, so the queue keeps handing claims out for longer.
            claim_ids = add_check(db, [("REFUTED", 0.5 + i / 200) for i in range(CLAIMS // 2)])
            claim_ids += add_check(
                db, [("NOT_ENOUGH_INFO", 0.5 + i / 200) for i in range(CLAIMS // 2)], needed=2
            )
        log = Log()
        stop = time.monotonic() + SECONDS
        workers = [
            threading.Thread(
                target=trainer,
                args=(f"http://127.0.0.1:{port}", key, f"t{i}", claim_ids, log, stop),
            )
            for i, key in enumerate(keys)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=SECONDS + 60)

        assert log.errors == []
        with sessions() as db:
            stored = {(r.claim_id, r.id) for r in db.query(Review).all()}
            versions = {c.id: c.version for c in db.query(Claim).all()}
        # Every accepted review is in the history, and the history holds nothing else.
        assert set(log.accepted) == stored
        assert len(log.accepted) == len(stored)
        # Each review moved its claim's version on by one.
        per_claim = dict.fromkeys(claim_ids, 0)
        for claim_id, _ in stored:
            per_claim[claim_id] += 1
        assert all(versions[c] == 1 + n for c, n in per_claim.items())
        assert log.stale_ok > 0  # deliberately stale writes were tried, and all were refused
        # No claim was handed to a second trainer while the first certainly held it:
        # the second handout's whole request lies between the first's response and
        # the first's review being sent, before the first lease can have run out.
        by_claim: dict[str, list[Handout]] = {}
        for handout in log.handouts:
            by_claim.setdefault(handout.claim_id, []).append(handout)
        for handouts in by_claim.values():
            for a in handouts:
                for b in handouts:
                    if a is b or a.holder == b.holder or a.review_sent is None:
                        continue
                    held_until = min(a.review_sent, a.sent + settings.review_lease_s)
                    assert not (a.received < b.sent and b.received < held_until), (a, b)
        print(
            f"accepted {len(stored)} reviews, {log.conflicts} conflicts "
            f"({log.stale_ok} deliberate stale writes refused), {len(log.handouts)} handouts"
        )
        assert len(stored) > CLAIMS and len(log.handouts) > 0
    finally:
        server.should_exit = True
        thread.join(timeout=30)
