"""A job worker killed with SIGKILL at random moments loses nothing and doubles nothing.

A job of many items is queued; a worker process (the same ``Worker`` that
``claimsieve worker`` runs, with the fake embedder) is killed at random points,
five times, then run to the end. Every item must then have exactly one result,
in order, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service import jobs
from service.settings import Settings
from service.store import corpora as corpus_store
from service.store import jobs as job_store
from service.store.models import JobItem, JobResult
from tests.factories import FakeEmbedder, documents

ROOT = Path(__file__).resolve().parents[2]
WORK = """
import sys, time
from pathlib import Path
from service import components
from service.jobs import Worker
from service.settings import Settings
from tests.factories import FakeEmbedder

settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2], default_corpus="docs",
                    build_default_corpus=False)
built = components.build(settings, FakeEmbedder())


class Slow:  # a batch takes as long as a small real one, so a kill lands inside one
    def __init__(self, checker):
        self.checker = checker

    def check_many(self, items, top_k):
        time.sleep(0.25)
        return self.checker.check_many(items, top_k)


worker = Worker(built.sessions, Slow(built.checker), batch=3, lease_s=1.0, max_attempts=50)
print("worker ready", flush=True)
while worker.run_once():
    pass
print("worker finished", flush=True)
"""
ITEMS = 30


def _start(data: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", WORK, str(data), url],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def _wait_ready(log: Path, starts: int) -> None:
    deadline = time.monotonic() + 60
    while log.read_text().count("worker ready") < starts:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_workers_leave_every_item_done_once(database_url: str, tmp_path: Path) -> None:
    from service import components

    data = tmp_path / "data"
    settings = Settings(
        data_dir=data, database_url=database_url, default_corpus="docs", build_default_corpus=False
    )
    built = components.build(settings, FakeEmbedder())
    with built.sessions() as db:
        corpus_store.create_corpus(db, "docs")
    built.checker.corpora.add_documents("docs", documents())
    texts = [
        "The Eiffel Tower was completed in 1889.",
        "Marie Curie was born in Warsaw. She won two Nobel Prizes.",
        "Python was first released in 1991.",
    ]
    items = [jobs.item_from_row({"id": n, "text": texts[n % 3]}) for n in range(ITEMS)]
    with built.sessions() as db:
        job, _ = jobs.submit(db, jobs.Submission(items), "test", None)
        job_id = job.id

    rng = random.Random(11)
    log = tmp_path / "worker.log"
    for trial in range(1, 6):
        process = _start(data, database_url, log)
        _wait_ready(log, trial)
        time.sleep(rng.uniform(0.2, 0.8))  # a batch is ~0.3 s: somewhere inside one
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    time.sleep(1.1)  # the last leases run out
    process = _start(data, database_url, log)
    assert process.wait(timeout=300) == 0, log.read_text()

    with built.sessions() as db:
        done = job_store.results(db, job_id)
        count = db.scalar(select(func.count()).select_from(JobResult))
        progress = job_store.progress(db, job_id)
        retaken = db.scalar(select(func.count()).where(JobItem.attempts > 1))
        assert job_store.get_job(db, job_id).status == "done"
    assert count == ITEMS  # no result lost, none twice (one row per item by its key)
    assert [r.position for r in done] == list(range(ITEMS))
    assert all("check" in r.body for r in done), [r.body for r in done if "check" not in r.body]
    assert progress.states["done"] == ITEMS
    assert retaken, "no worker was killed holding items: the trial tested nothing"
    built.engine.dispose()
