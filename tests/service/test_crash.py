"""An ingestion killed at random points never harms the served snapshot.

A subprocess adds documents to a corpus and is killed with SIGKILL at a random
moment; a fresh ``Corpora`` (a restart) must then serve either the old version,
unchanged, or the complete new one, with nothing half-written left behind once
it has recovered, and the same ingestion run again must succeed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.snapshots import Snapshot
from retrieval.types import Document
from service.corpora import Corpora
from service.store import corpora as corpus_store
from service.store import db as store_db
from tests.factories import FakeEmbedder, documents

ROOT = Path(__file__).resolve().parents[2]
INGEST = """
import sys
from pathlib import Path
from retrieval.types import Document
from service.corpora import Corpora
from service.store import db as store_db
from tests.factories import FakeEmbedder

url, root, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sessions = store_db.make_session_factory(store_db.make_engine(url))
corpora = Corpora(sessions, Path(root), FakeEmbedder())
docs = (
    Document(f"n{i}", f"Note {i}", " ".join(f"Note {i} holds fact {j}." for j in range(25)))
    for i in range(first, first + count)
)
print(corpora.add_documents("c", docs).version, flush=True)
"""
BATCH = 600
QUERIES = ["Where was Marie Curie born?", "How tall is the Eiffel Tower?", "Who created Python?"]


def ingest(url: str, root: Path, first: int) -> subprocess.Popen[bytes]:
    log = root.parent / f"ingest-{first}.log"
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", INGEST, url, str(root), str(first), str(BATCH)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def finish(process: subprocess.Popen[bytes], root: Path, first: int) -> None:
    code = process.wait(timeout=300)
    assert code == 0, (root.parent / f"ingest-{first}.log").read_text()


def answers(snapshot: Snapshot) -> list[list[str]]:
    embedder = FakeEmbedder()
    hits = snapshot.search(embedder.encode(QUERIES), QUERIES, 3)
    return [[h.passage.id for h in row] for row in hits]


ENGINES: list[Any] = []  # every restart's engine, disposed when the test ends


def restart(url: str, root: Path) -> Corpora:
    engine = store_db.make_engine(url)
    ENGINES.append(engine)
    sessions = store_db.make_session_factory(engine)
    corpora = Corpora(sessions, root, FakeEmbedder())
    corpora.recover(older_than_s=0)
    return corpora


@pytest.mark.slow
def test_killed_ingestions_leave_the_served_snapshot_intact(
    database_url: str, tmp_path: Path
) -> None:
    try:
        killed_ingestions(database_url, tmp_path)
    finally:
        while ENGINES:
            ENGINES.pop().dispose()


def killed_ingestions(url: str, tmp_path: Path) -> None:
    store_db.upgrade(url)
    root = tmp_path / "indexes"
    corpora = restart(url, root)
    with corpora._sessions() as db:  # noqa: SLF001 (the test sets the stage)
        corpus_store.create_corpus(db, "c")
    corpora.add_documents("c", documents())

    # An uninterrupted run tells how long an ingestion takes here.
    started = time.monotonic()
    finish(ingest(url, root, 0), root, 0)
    duration = time.monotonic() - started
    documents_now = BATCH + 3

    rng = random.Random(7)
    outcomes = []
    for trial in range(1, 8):
        first = trial * BATCH
        before = restart(url, root).current("c")
        assert before is not None
        baseline = answers(before)
        process = ingest(url, root, first)
        time.sleep(rng.uniform(0.2, 1.3) * duration)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

        corpora = restart(url, root)
        snapshot = corpora.current("c")
        assert snapshot is not None
        # The old version, untouched, or the whole new one: never anything between.
        assert snapshot.manifest.documents in (documents_now, documents_now + BATCH)
        completed = snapshot.manifest.documents == documents_now + BATCH
        outcomes.append("completed" if completed else "rolled back")
        if not completed:
            assert snapshot.version == before.version and answers(snapshot) == baseline
        assert not [p for p in (root / "c").iterdir() if p.name.startswith(".tmp")]
        with corpora._sessions() as db:  # noqa: SLF001
            corpus = corpus_store.get_corpus(db, "c")
            assert corpus is not None
            recorded = {
                (root / v.snapshot_path).resolve() for v in corpus_store.list_versions(db, corpus)
            }
        on_disk = {p.resolve() for p in (root / "c").iterdir()}
        assert on_disk <= recorded and snapshot.folder is not None  # nothing unrecorded is left
        assert snapshot.folder.resolve() in on_disk

        # Running the same ingestion again finishes it (or finds nothing left to do).
        started = time.monotonic()
        finish(ingest(url, root, first), root, first)
        duration = time.monotonic() - started  # the next ingestion is about as long
        documents_now += BATCH
        final = restart(url, root).current("c")
        assert final is not None and final.manifest.documents == documents_now
        probe = Document(f"n{first}", f"Note {first}", "")
        hits = final.search(
            FakeEmbedder().encode([f"Note {first} holds fact 3."]),
            [f"Note {first} holds fact 3."],
            1,
        )
        assert hits[0][0].passage.document_id == probe.id
        assert np.isfinite(final.vectors[: len(final.vectors)]).all()
    print("outcomes:", outcomes)
    assert len(outcomes) >= 5
