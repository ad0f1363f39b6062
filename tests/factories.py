"""Plain factory functions and fakes for the tests."""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.embedders import TokenVectors
from retrieval.types import Document

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from service.settings import Settings

# The app and the store are imported where they are used: a crash test's subprocess
# imports this module for the fake embedder alone.

WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder that counts what it encodes."""

    name = "fake-hashing"

    def __init__(self, dim: int = 128) -> None:
        self.dim = dim
        self.calls = 0
        self.texts = 0
        self.token_calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        return self._vectors(texts)

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim
                vectors[row, bucket] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Each word a piece, its vector the hashing vector of the word alone."""
        self.token_calls += 1
        out = []
        for text, sentence in zip(texts, self._vectors(texts), strict=True):
            words = WORD.findall(text.lower()) or ["."]
            out.append(TokenVectors(tuple(words), self._vectors(words), sentence))
        return out


def documents() -> list[Document]:
    return [
        Document(
            "eiffel",
            "Eiffel Tower",
            "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. "
            "It was completed in 1889 and is 330 metres tall.",
        ),
        Document(
            "curie",
            "Marie Curie",
            "Marie Curie was a physicist and chemist. She was born in Warsaw in 1867. "
            "She won two Nobel Prizes.",
        ),
        Document(
            "python",
            "Python",
            "Python is a programming language created by Guido van Rossum. "
            "It was first released in 1991.",
        ),
    ]


def document_rows() -> list[dict[str, str]]:
    return [{"id": d.id, "title": d.title, "text": d.text} for d in documents()]


# Apps ----------------------------------------------------------------------------------


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    from service.settings import Settings

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "default_corpus": "docs",
        "build_default_corpus": False,
        "auth": True,
    }
    values.update(overrides)
    return Settings(**values)


def seed_corpus(client: TestClient, headers: dict[str, str], name: str = "docs") -> None:
    assert client.post("/v1/corpora", json={"name": name}, headers=headers).status_code == 201
    response = client.post(f"/v1/corpora/{name}/documents", json=document_rows(), headers=headers)
    assert response.status_code == 201, response.text


class Api:
    """A test client with one key per role."""

    def __init__(
        self, client: TestClient, settings: Settings, keys: dict[str, str], embedder: FakeEmbedder
    ) -> None:
        self.client = client
        self.settings = settings
        self.keys = keys
        self.embedder = embedder

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def open_api(settings: Settings, embedder: FakeEmbedder) -> Iterator[Api]:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.store import keys as key_store

    app = create_app(settings, embedder=embedder)
    with TestClient(app, raise_server_exceptions=False) as client:
        with app.state.sessions() as db:
            keys = {
                role: key_store.create_key(db, f"{role}-tester", role)[1]
                for role in ("admin", "trainer", "pipeline")
            }
        api = Api(client, settings, keys, embedder)
        seed_corpus(client, api.headers("admin"))
        yield api


def reset(api: Api, initial_keys: set[int]) -> None:
    """Put a shared app back as :func:`open_api` left it: no checks, reviews or
    calibrations, its own keys only (none revoked), and the one corpus ``docs`` as seeded
    (made again only when a test changed the corpora)."""
    from sqlalchemy import delete, select, update

    from service.store.models import (
        ApiKey,
        AuditEvent,
        Calibration,
        Check,
        Claim,
        ClaimLease,
        Corpus,
        CorpusVersion,
        Delivery,
        Evidence,
        Job,
        JobItem,
        JobResult,
        LabelStudioTask,
        Review,
    )

    app: Any = api.client.app
    with app.state.sessions() as db:
        for table in (JobResult, JobItem, Job, Delivery, LabelStudioTask, Evidence, ClaimLease):
            db.execute(delete(table))
        for table in (Review, Claim, Check):
            db.execute(delete(table))
        for table in (Calibration, AuditEvent):
            db.execute(delete(table))
        db.execute(delete(ApiKey).where(ApiKey.id.not_in(initial_keys)))
        db.execute(update(ApiKey).values(revoked_at=None, expires_at=None))
        corpora = [(c.name, c.current_version) for c in db.scalars(select(Corpus))]
        changed = corpora != [("docs", 1)]
        if changed:
            db.execute(delete(CorpusVersion))
            db.execute(delete(Corpus))
        db.commit()
    app.state.checker.forget()  # remembered verdicts: each test checks afresh
    if changed:
        app.state.checker.corpora.forget()
        for folder in api.settings.snapshot_dir.iterdir():
            shutil.rmtree(folder)
        seed_corpus(api.client, api.headers("admin"))


# Rows and answers ----------------------------------------------------------------------

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
REVIEWED_TEXT = "Paris is in Germany. The Moon is made of cheese. Water boils at 100 degrees."


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == status
    assert body["type"] == f"/problems/{body['code']}"
    if code:
        assert body["code"] == code, body
    return body


def add_check(
    db: Any,
    specs: list[tuple[str, float]],
    corpus: str = "docs",
    metadata: dict[str, str] | None = None,
    needed: int = 1,
) -> list[str]:
    """A stored check whose claims have the given (verdict, confidence); returns claim ids."""
    from claims import metrics
    from claims.aggregation import review_priority
    from claims.types import Label, Verdict
    from service.store.models import Check, Claim

    check_id = f"chk_{uuid.uuid4().hex}"
    check = Check(
        id=check_id,
        kind="check",
        text=REVIEWED_TEXT,
        prompt="Tell me facts.",
        corpus_name=corpus,
        corpus_version=1,
        extractor="parse/2",
        verifier="similarity-rules",
        verifier_version="1",
        summary={},
        warnings=[],
        metadata_=metadata or {},
        claims=[],
    )
    ids = []
    for position, (label, confidence) in enumerate(specs):
        claim_id = f"clm_{uuid.uuid4().hex}"
        ids.append(claim_id)
        rest = (1 - confidence) / 2
        scores = {k: (confidence if k == label else rest) for k in metrics.LABELS}
        verdict = Verdict(
            Label(label), confidence, {Label(k): v for k, v in scores.items()}, (), ()
        )
        start = position * 20
        check.claims.append(
            Claim(
                id=claim_id,
                check_id=check_id,
                position=position,
                text=f"Claim {position}.",
                source_text=REVIEWED_TEXT[start : start + 10],
                spans=[{"start": start, "end": start + 10}],
                checkworthy=True,
                checkworthy_reason=None,
                verdict=label,
                confidence=confidence,
                scores=scores,
                raw_scores=scores,
                reasons=[],
                flagged=True,
                review_state="unreviewed",
                version=1,
                priority=review_priority(verdict),
                reviews_needed=needed,
                evidence=[],
            )
        )
    db.add(check)
    db.commit()
    return ids
