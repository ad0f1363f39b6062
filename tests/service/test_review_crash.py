"""The service killed with SIGKILL during a burst of reviews loses no accepted review.

Trainers post reviews as fast as they can to a real service process (uvicorn, the
fake embedder); at a random moment the process is killed, then started again on
the same database, five times. Every review that was answered 201 must be there
afterwards, and nothing may be half-written: each claim's version is one more than
the number of its reviews, and each review names a different version of its claim.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from service import components
from service.settings import Settings
from service.store import keys as key_store
from service.store.models import Claim, Review
from tests.factories import FakeEmbedder, add_check
from tests.processes import ROOT, free_port

SERVE = """
import sys
from pathlib import Path

import uvicorn

from service.app import create_app
from service.settings import Settings
from tests.factories import FakeEmbedder

settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2], default_corpus="docs",
                    build_default_corpus=False, job_workers=0)
uvicorn.run(create_app(settings, embedder=FakeEmbedder()), host="127.0.0.1",
            port=int(sys.argv[3]), log_level="warning")
"""
CLAIMS = 40
TRIALS = 5


def start(data: Path, url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(data), url, str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)


def burst(
    base: str, key: str, claim_ids: list[str], seed: int, accepted: list[tuple[str, int]]
) -> None:
    """Review claims until the service goes away; every 201 is recorded."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
        while True:
            claim_id = rng.choice(claim_ids)
            try:
                version = c.get(f"/v1/claims/{claim_id}").json()["version"]
                label = rng.choice(["SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"])
                body = {"action": "correct", "label": label, "expected_version": version}
                answer = c.post(f"/v1/claims/{claim_id}/reviews", json=body)
            except (httpx.TransportError, KeyError, ValueError):
                return  # killed
            if answer.status_code == 201:  # list.append is atomic: the threads share it
                accepted.append((claim_id, answer.json()["review"]["id"]))


@pytest.mark.slow
def test_killed_service_keeps_every_accepted_review(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(
        data_dir=data, database_url=database_url, default_corpus="docs", build_default_corpus=False
    )
    built = components.build(settings, FakeEmbedder())
    with built.sessions() as db:
        claim_ids = add_check(
            db, [("REFUTED", 0.5 + i / 100) for i in range(CLAIMS)], corpus="docs"
        )
        keys = [key_store.create_key(db, f"t{n}", "trainer")[1] for n in range(4)]
    rng = random.Random(5)
    accepted: list[tuple[str, int]] = []
    log = tmp_path / "service.log"
    per_trial = []
    for trial in range(TRIALS):
        port = free_port()
        process = start(data, database_url, port, log)
        before = len(accepted)
        threads = [
            threading.Thread(
                target=burst,
                args=(f"http://127.0.0.1:{port}", key, claim_ids, trial * 10 + n, accepted),
            )
            for n, key in enumerate(keys)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.5, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=30)
        per_trial.append(len(accepted) - before)
    assert all(n > 0 for n in per_trial), per_trial  # every trial killed a live burst

    # A restart, then the record.
    process = start(data, database_url, free_port(), log)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    with built.sessions() as db:
        reviews = list(db.scalars(select(Review)))
        claims = {c.id: c for c in db.scalars(select(Claim).where(Claim.id.in_(claim_ids)))}
    built.engine.dispose()
    stored = {(r.claim_id, r.id) for r in reviews}
    lost = [a for a in accepted if a not in stored]
    assert lost == [], f"{len(lost)} accepted reviews lost of {len(accepted)}"
    for claim_id, claim in claims.items():
        mine = [r for r in reviews if r.claim_id == claim_id]
        assert claim.version == 1 + len(mine), (claim_id, claim.version, len(mine))
        assert len({r.claim_version for r in mine}) == len(mine)
    print(f"review crash trials: {TRIALS} kills, accepted per trial {per_trial}, lost 0")
