"""Corpora as the service holds them: the database record and the current index snapshot.

A new version is built beside the current one, written atomically, then
recorded in the database in one transaction; readers keep using the snapshot
they have until the database says a newer one is current. Service replicas and
the command line share the snapshots folder and see each other's versions.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from retrieval import snapshots
from retrieval.embedders import Embedder
from retrieval.index import DenseIndex
from retrieval.snapshots import Manifest, Snapshot, SnapshotStore
from retrieval.types import Document
from service.errors import BadRequestError, ConflictError, NotFoundError
from service.store import corpora as corpus_store
from service.store.corpora import NewVersion

log = logging.getLogger("claimsieve")


@dataclass(frozen=True)
class AddResult:
    corpus: str
    version: int
    added: int
    replaced: int
    unchanged: int
    passages: int


class Corpora:
    """Loads, caches and extends corpus snapshots.

    Args:
        sessions: Database session factory.
        store: Where snapshots live on disk.
        embedder: Encodes passages of new documents.
        chunk_chars: Passage size budget.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: SnapshotStore,
        embedder: Embedder,
        chunk_chars: int = 800,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._embedder = embedder
        self._chunk_chars = chunk_chars
        self._cache: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        self._write_locks: dict[str, threading.Lock] = {}

    def _empty(self, name: str) -> Snapshot:
        manifest = Manifest(
            name, 0, 0, 0, self._embedder.name, self._embedder.dim, datetime.now(UTC).isoformat()
        )
        empty = np.zeros((0, self._embedder.dim), dtype=np.float32)
        return Snapshot(manifest, [], DenseIndex(self._embedder.dim), empty)

    def current(self, name: str) -> Snapshot | None:
        """The current snapshot of corpus ``name``, or ``None`` if there is no such corpus."""
        with self._sessions() as db:
            corpus = corpus_store.get_corpus(db, name)
            if corpus is None:
                return None
            cached = self._cache.get(name)
            if cached is not None and cached.version == corpus.current_version:
                return cached
            row = corpus_store.version_row(db, corpus, corpus.current_version)
        with self._lock:
            cached = self._cache.get(name)
            if row is None:
                snapshot = self._empty(name)
            elif cached is not None and cached.version == row.version:
                return cached
            else:
                snapshot = self._store.load(self._store.root / row.snapshot_path)
            self._cache[name] = snapshot
            return snapshot

    def add_documents(self, name: str, documents: Sequence[Document]) -> AddResult:
        """Add or replace documents, making a new version when anything changed.

        Unchanged documents (same id, title and text) are skipped; passages of
        documents that stay are not embedded again.
        """
        counts = Counter(d.id for d in documents)
        duplicates = sorted(i for i, n in counts.items() if n > 1)
        if duplicates:
            raise BadRequestError(
                f"document ids repeat in one request: {duplicates[:5]}", "duplicate_document_id"
            )
        with self._lock:
            write_lock = self._write_locks.setdefault(name, threading.Lock())
        with write_lock, self._sessions() as db:
            corpus = corpus_store.get_corpus(db, name)
            if corpus is None:
                raise NotFoundError(f"no corpus named {name!r}", "corpus_not_found")
            hashes = corpus_store.live_hashes(db, corpus)
            changed = [d for d in documents if hashes.get(d.id) != corpus_store.content_hash(d)]
            replaced = frozenset(d.id for d in changed if d.id in hashes)
            previous = self.current(name)
            db.commit()  # end the read transaction: embedding can take minutes
            if not changed:
                assert previous is not None
                return AddResult(
                    name, corpus.current_version, 0, 0, len(documents), len(previous.passages)
                )
            snapshot = snapshots.build(
                name,
                corpus.current_version + 1,
                self._embedder,
                changed,
                previous=previous,
                removed_ids=replaced,
                max_chars=self._chunk_chars,
            )
            folder = self._store.write(snapshot)
            new = NewVersion(
                snapshot.version,
                snapshot.manifest.documents,
                len(snapshot.passages),
                self._embedder.name,
                # Relative to the snapshots root, so the data folder can move or be mounted.
                folder.relative_to(self._store.root).as_posix(),
            )
            try:
                corpus_store.record_version(db, corpus, new, changed)
            except BaseException:
                self._store.discard(folder)
                raise
        with self._lock:
            self._cache[name] = snapshot
        log.info("corpus %s is now version %d (%d passages)", name, new.version, new.passages)
        return AddResult(
            name,
            new.version,
            len(changed) - len(replaced),
            len(replaced),
            len(documents) - len(changed),
            new.passages,
        )

    def ensure(self, name: str, documents: Callable[[], Sequence[Document]]) -> Snapshot:
        """Create and fill corpus ``name`` from ``documents()`` if it does not exist or is empty."""
        with self._sessions() as db:
            corpus = corpus_store.get_corpus(db, name)
            if corpus is None:
                try:
                    corpus_store.create_corpus(db, name, "built-in corpus")
                except ConflictError:
                    pass  # another process created it first
                corpus = corpus_store.get_corpus(db, name)
            assert corpus is not None
            empty = corpus.current_version == 0
        if empty:
            log.info("building corpus %s (first start only)", name)
            try:
                self.add_documents(name, documents())
            except ConflictError:
                log.info("another process built corpus %s first; using its version", name)
        snapshot = self.current(name)
        assert snapshot is not None
        return snapshot
