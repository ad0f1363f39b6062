"""Corpora as the service holds them: the database record and the current index snapshot.

A change (documents added, replaced or deleted, or a rebuild) is built as a
new snapshot beside the current one, written atomically, then recorded in the
database in one transaction; readers keep using the snapshot they have until
the database says a newer one is current. Service replicas and the command
line share the snapshots folder and see each other's versions.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from retrieval import snapshots
from retrieval.embedders import Embedder
from retrieval.errors import EmbedderMismatchError, SnapshotError
from retrieval.index import DenseConfig
from retrieval.snapshots import Builder, Chunking, Snapshot
from retrieval.types import Document
from service.errors import ConflictError, NotFoundError
from service.store import corpora as corpus_store
from service.store.corpora import NewVersion
from service.store.models import Corpus

log = logging.getLogger("claimsieve")


@dataclass(frozen=True)
class ChangeResult:
    corpus: str
    version: int
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    passages: int = 0
    documents: int = 0
    not_found: list[str] = field(default_factory=list)


class Corpora:
    """Loads, caches and changes corpus snapshots.

    Args:
        sessions: Database session factory.
        root: Where snapshots live on disk.
        embedder: Encodes passages of new documents.
        chunking: How documents are cut into passages.
        dense: How the dense index is chosen and searched.
        retain: Versions whose snapshot folders are kept on disk (the current one included);
            older versions stay listed but their folders are removed.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        root: Path,
        embedder: Embedder,
        chunking: Chunking | None = None,
        dense: DenseConfig | None = None,
        retain: int = 3,
    ) -> None:
        self._sessions = sessions
        self._retain = max(1, retain)
        self.root = root
        self._embedder = embedder
        self._chunking = chunking or Chunking()
        self._dense = dense or DenseConfig()
        self._cache: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        self._write_locks: dict[str, threading.Lock] = {}

    def current(self, name: str, db: Session | None = None) -> Snapshot | None:
        """The current snapshot of corpus ``name``, or ``None`` if there is no such corpus.

        The version is read through ``db`` when given (the caller's session).
        """
        with contextlib.nullcontext(db) if db is not None else self._sessions() as db:
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
                snapshot = Snapshot.empty(name, self._embedder.name, self._embedder.dim)
            elif cached is not None and cached.version == row.version:
                return cached
            else:
                snapshot = snapshots.load(self.root / row.snapshot_path, self._dense)
            self._cache[name] = snapshot
            return snapshot

    def forget(self) -> None:
        """Drop every loaded snapshot: the next read loads what the database names.

        For when the database was changed behind this process's back (a restore).
        """
        with self._lock:
            self._cache.clear()

    def searchable(self, name: str, db: Session | None = None) -> Snapshot | None:
        """:meth:`current`, refused (``EmbedderMismatchError``) when another embedder made it.

        Searching it would compare vectors of two models, and growing it would mix them.
        """
        snapshot = self.current(name, db)
        if snapshot is not None and len(snapshot):
            try:
                snapshots.check_embedder(snapshot.manifest, self._embedder)
            except EmbedderMismatchError as exc:
                raise EmbedderMismatchError(
                    f"{exc.message}; re-embed it: `claimsieve corpus rebuild {name} --reembed` "
                    f"or POST /v1/corpora/{name}/rebuild?reembed=true"
                ) from exc
        return snapshot

    def add_documents(
        self, name: str, documents: Iterable[Document], progress: bool = False
    ) -> ChangeResult:
        """Add or replace documents (streamed), making a new version when anything changed."""
        return self.change(name, add=documents, progress=progress)

    def delete_documents(self, name: str, ids: Sequence[str]) -> ChangeResult:
        """Delete documents; a new version marks their passages as tombstones."""
        return self.change(name, delete=ids)

    def rebuild(
        self,
        name: str,
        progress: bool = False,
        reembed: bool = False,
        report: Callable[[int], None] | None = None,
    ) -> ChangeResult:
        """A new version without tombstones, its indexes built afresh (compaction).

        ``reembed`` encodes every live document again with this service's embedder:
        the way to move a corpus made by another embedder onto this one.
        """
        if reembed:
            return self.change(name, progress=progress, reembed=True, report=report)
        return self.change(name, compact=True, progress=progress, report=report)

    def change(
        self,
        name: str,
        add: Iterable[Document] = (),
        delete: Sequence[str] = (),
        compact: bool = False,
        progress: bool = False,
        fresh: bool = False,
        reembed: bool = False,
        report: Callable[[int], None] | None = None,
    ) -> ChangeResult:
        """Build and record the next version.

        ``fresh`` starts from nothing, not the current version; ``reembed`` starts from
        nothing and adds the current version's documents again (read under the write lock,
        so no change made meanwhile is lost). ``report`` is told how many documents have
        been read so far.
        """
        with self._lock:
            write_lock = self._write_locks.setdefault(name, threading.Lock())
        with write_lock, self._sessions() as db:
            corpus = corpus_store.get_corpus(db, name)
            if corpus is None:
                raise NotFoundError(f"no corpus named {name!r}", "corpus_not_found")
            if reembed:
                current = self.current(name)
                assert current is not None
                add = itertools.chain(
                    (
                        Document(d.id, d.title, d.text, d.metadata)
                        for d in snapshots.documents(current)
                    ),
                    add,
                )
            previous = (
                Snapshot.empty(name, self._embedder.name, self._embedder.dim)
                if fresh or reembed
                else self.searchable(name)
            )
            db.commit()  # end the read transaction: embedding can take minutes
            assert previous is not None
            with Builder(
                self.root,
                name,
                corpus.current_version + 1,
                self._embedder,
                previous,
                self._chunking,
                self._dense,
                compact=compact,
                progress=progress,
                report=report,
            ) as builder:
                builder.delete(delete)
                change = builder.add(add)
                if not change.changed and not compact:
                    builder.abort()
                    return ChangeResult(
                        name,
                        corpus.current_version,
                        unchanged=change.unchanged,
                        passages=len(previous),
                        documents=previous.manifest.documents,
                        not_found=change.not_found,
                    )
                folder = builder.finish()
            snapshot, new = self._record(db, corpus, folder)
        with self._lock:
            self._cache[name] = snapshot
        log.info("corpus %s is now version %d (%d passages)", name, new.version, new.passages)
        return ChangeResult(
            name,
            new.version,
            change.added,
            change.replaced,
            change.unchanged,
            change.deleted,
            new.passages,
            new.documents,
            change.not_found,
        )

    def _record(self, db: Session, corpus: Corpus, folder: Path) -> tuple[Snapshot, NewVersion]:
        """Load the new snapshot and record it as the current version; old folders go."""
        snapshot = snapshots.load(folder, self._dense)
        new = NewVersion(
            snapshot.version,
            snapshot.manifest.documents,
            len(snapshot),
            self._embedder.name,
            # Relative to the snapshots root, so the data folder can move or be mounted.
            folder.relative_to(self.root).as_posix(),
        )
        try:
            corpus_store.record_version(db, corpus, new)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # never recorded: nobody reads it
            raise
        for old in corpus_store.list_versions(db, corpus):
            if old.version <= new.version - self._retain:
                shutil.rmtree(self.root / old.snapshot_path, ignore_errors=True)
        return snapshot, new

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
        fresh = False
        if not empty:
            try:  # e.g. a snapshot format this version no longer reads, or another embedder's
                self.searchable(name)
            except SnapshotError as exc:
                log.warning("rebuilding corpus %s: %s", name, exc.message)
                fresh = True
        if empty or fresh:
            log.info("building corpus %s", name)
            try:
                self.change(name, add=documents(), progress=True, fresh=fresh)
            except ConflictError:
                log.info("another process built corpus %s first; using its version", name)
        snapshot = self.current(name)
        assert snapshot is not None
        return snapshot

    def available(self, snapshot_path: str) -> bool:
        """Whether a version's snapshot folder is still on disk (see ``retain``)."""
        return (self.root / snapshot_path / "manifest.json").exists()

    def recover(self, older_than_s: float = 3600.0) -> list[Path]:
        """Remove snapshot folders left by interrupted writers (see ``snapshots.sweep``)."""
        removed: list[Path] = []
        with self._sessions() as db:
            for corpus in corpus_store.list_corpora(db):
                keep = [self.root / v.snapshot_path for v in corpus_store.list_versions(db, corpus)]
                removed += snapshots.sweep(self.root / corpus.name, keep, older_than_s)
        for folder in removed:
            log.info("removed %s, left by an interrupted corpus change", folder)
        return removed
