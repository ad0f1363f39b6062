"""Versioned, immutable corpus snapshots: passages, dense and sparse indexes, documents.

A snapshot is a folder ``<root>/<corpus>/v<version>-<token>/``:

``manifest.json``        what the folder holds (written last)
``passages.jsonl``       row ``i`` describes passage ``i``; ``passage_offsets.npy`` gives
                         the byte offset of each row, so passages are read on demand
``vectors.npy``          one vector per passage (memory-mapped)
``sentences.npy``        one vector per passage sentence, passage by passage, with
                         ``sentence_offsets.npy`` (rows + 1 entries); verification only
                         embeds the claims
``index.faiss``          the approximate dense index (none for ``flat``: built from
                         ``vectors.npy`` on load)
``bm25/``                the ``bm25s`` index (memory-mapped)
``tombstones.npy``       passage rows that no live document owns any more
``owners.json``          rows shared by several documents, or whose first owner was
                         deleted: their live owners ``[document, start, end]``
``documents.jsonl``      the live documents: id, title, text, metadata, content hash and
                         the rows they own with their offsets

A :class:`Builder` writes the next version in a temporary folder, streaming
documents in batches, then fsyncs and renames it into place: a reader sees a
whole snapshot or none. Passages of documents that stay keep their vectors;
identical passages (same title and text) are stored once; deleting marks
tombstones that dense and sparse search both honour, and :meth:`Builder`
with ``compact=True`` rebuilds without them. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import mmap
import os
import shutil
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from numpy.typing import NDArray

from retrieval.embedders import Embedder
from retrieval.errors import EmbedderMismatchError, IngestError, SnapshotError
from retrieval.index import DenseConfig, DenseIndex, Kind, NpyRows
from retrieval.ingest import chunk
from retrieval.sparse import SparseIndex, write_index
from retrieval.text import titled
from retrieval.types import Document, Hit, Passage

FORMAT = 2
Mode = Literal["hybrid", "dense", "sparse"]
Reranker = Callable[[str, Sequence[Passage]], Sequence[float]]


@dataclass(frozen=True)
class Manifest:
    corpus: str
    version: int
    rows: int  # passages stored, tombstoned ones included
    passages: int  # live passages
    documents: int
    embedder: str
    dim: int
    dense: str  # flat, hnsw, ivf or ivfpq
    created_at: str
    chunk_tokens: int = 200
    chunk_overlap: int = 30
    format: int = FORMAT


@dataclass(frozen=True)
class Chunking:
    """Passage budget and overlap, in the embedder's word pieces when it can count them."""

    max_tokens: int = 200
    overlap: int = 30


# A title longer than this many word pieces is not allowed to shrink passages further.
_TITLE_ALLOWANCE = 64


def passages_of(document: Document, chunking: Chunking, embedder: Embedder) -> list[Passage]:
    """The passages ``document`` is stored as.

    An embedder that counts word pieces (``count_pieces``, ``max_pieces``) gets
    passages that fit one forward pass together with their title, so none is
    cut off and each is read once; any other gets :func:`chunk`'s word count.
    """
    count = getattr(embedder, "count_pieces", None)
    if count is None:
        return chunk(document, chunking.max_tokens, chunking.overlap)
    (title,) = count([titled(document.title, "")])
    room = int(getattr(embedder, "max_pieces", chunking.max_tokens)) - min(title, _TITLE_ALLOWANCE)
    return chunk(document, min(chunking.max_tokens, room), chunking.overlap, count)


@dataclass(frozen=True)
class Fusion:
    """Reciprocal rank fusion: ``score = Σ weight / (k + rank)`` over the dense and sparse lists."""

    k: int = 60
    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    depth: int = 50  # candidates taken from each list
    rerank_depth: int = 20  # fused candidates a reranker sees


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class NpyWriter:
    """Appends float32 or int64 rows to a ``.npy`` file whose length is known only at the end."""

    HEADER = 128

    def __init__(self, path: Path, dtype: Any, width: int | None) -> None:
        self.path, self.dtype, self.width = path, np.dtype(dtype), width
        self.rows = 0
        self._file: IO[bytes] = path.open("wb")
        self._file.write(b"\0" * self.HEADER)

    def append(self, values: NDArray[Any]) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        self._file.write(values.tobytes())
        self.rows += len(values)

    def discard(self) -> None:
        self._file.close()

    def close(self) -> None:
        shape = (self.rows,) if self.width is None else (self.rows, self.width)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        text = repr({**header, "shape": shape}).encode("latin1")
        body = b"\x93NUMPY\x01\x00" + (self.HEADER - 10).to_bytes(2, "little")
        padding = self.HEADER - len(body) - len(text) - 1
        self._file.seek(0)
        self._file.write(body + text + b" " * padding + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def passage_hash(title: str, text: str) -> str:
    return hashlib.sha1(f"{title}\x00{text}".encode(), usedforsecurity=False).hexdigest()[:20]


def content_hash(document: Document) -> str:
    return hashlib.sha256(f"{document.title}\x00{document.text}".encode()).hexdigest()


class Snapshot:
    """A loaded snapshot, searched dense, sparse or hybrid; passages are read on demand."""

    def __init__(
        self,
        manifest: Manifest,
        folder: Path | None,
        passage_lines: Callable[[int], bytes],
        vectors: NDArray[np.float32],
        sentence_vectors: NDArray[np.float32],
        sentence_offsets: NDArray[np.int64],
        tombstones: NDArray[np.int64],
        owners: dict[int, list[tuple[str, int, int]]],
        dense: DenseIndex | None,
        sparse: SparseIndex,
    ) -> None:
        self.manifest = manifest
        self.folder = folder
        self._line = passage_lines
        self.vectors = vectors
        self.sentence_vectors = sentence_vectors
        self.sentence_offsets = sentence_offsets
        self.tombstones = tombstones
        self.live = np.ones(manifest.rows, dtype=bool)
        self.live[tombstones] = False
        self.owners = owners
        self.dense = dense
        self.sparse = sparse

    @classmethod
    def empty(cls, corpus: str, embedder: str, dim: int) -> Snapshot:
        manifest = Manifest(
            corpus, 0, 0, 0, 0, embedder, dim, "flat", datetime.now(UTC).isoformat()
        )
        none = np.zeros(0, dtype=np.int64)
        return cls(
            manifest,
            None,
            lambda row: b"",
            np.zeros((0, dim), np.float32),
            np.zeros((0, dim), np.float32),
            np.zeros(1, dtype=np.int64),
            none,
            {},
            None,
            SparseIndex.empty(),
        )

    @property
    def version(self) -> int:
        return self.manifest.version

    def __len__(self) -> int:
        """Live passages."""
        return self.manifest.passages

    def row(self, row: int) -> dict[str, Any]:
        """The stored JSON of passage row ``row``."""
        value: dict[str, Any] = json.loads(self._line(row))
        return value

    def passage(self, row: int) -> Passage:
        """Passage ``row`` as its first live owner sees it."""
        data = self.row(row)
        owner = self.owners.get(row)
        document_id, start, end = (
            owner[0] if owner else (data["document_id"], data["start"], data["end"])
        )
        return Passage(
            data["id"] if not owner else f"{document_id}@{start}",
            document_id,
            data["title"],
            data["text"],
            start,
            end,
            tuple((int(s), int(e)) for s, e in data["sentences"]),
        )

    def sentences_of(self, row: int) -> NDArray[np.float32]:
        """The sentence vectors of passage ``row``."""
        return self.sentence_vectors[self.sentence_offsets[row] : self.sentence_offsets[row + 1]]

    def search(
        self,
        vectors: NDArray[np.float32],
        texts: Sequence[str],
        k: int,
        mode: Mode = "hybrid",
        fusion: Fusion | None = None,
        rerank: Reranker | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` live passages for each query (its vector and its text), best first.

        Args:
            vectors: Query vectors (used by dense and hybrid search).
            texts: Query texts (used by sparse and hybrid search, and by ``rerank``).
            k: Passages per query.
            mode: ``hybrid`` fuses dense and sparse ranks; ``dense`` or ``sparse`` alone.
            fusion: Fusion weights and depths.
            rerank: Scores (query, passages) pairs; reorders the top fused candidates.
        """
        fusion = fusion or Fusion()
        count = max(len(vectors), len(texts))
        if len(self) == 0 or count == 0:
            return [[] for _ in range(count)]
        depth = max(k, fusion.depth if mode == "hybrid" or rerank else k)
        dense_lists: list[list[tuple[int, float]]] = [[] for _ in range(count)]
        sparse_lists: list[list[tuple[int, float]]] = [[] for _ in range(count)]
        if mode in ("hybrid", "dense"):
            assert self.dense is not None
            scores, rows = self.dense.search(
                vectors, min(depth, self.manifest.rows), self.tombstones
            )
            dense_lists = [
                [(int(r), float(s)) for r, s in zip(row, score, strict=True) if r >= 0]
                for row, score in zip(rows, scores, strict=True)
            ]
        if mode in ("hybrid", "sparse"):
            sparse_lists = self.sparse.search(
                texts, depth, self.live if len(self.tombstones) else None
            )
        out = []
        for number in range(count):
            if mode == "dense":
                ranked = dense_lists[number]
            elif mode == "sparse":
                ranked = sparse_lists[number]
            else:
                ranked = rrf(
                    [dense_lists[number], sparse_lists[number]],
                    [fusion.dense_weight, fusion.sparse_weight],
                    fusion.k,
                )
            if rerank is not None and ranked:
                head = ranked[: fusion.rerank_depth]
                scores_ = rerank(texts[number], [self.passage(r) for r, _ in head])
                ranked = sorted(
                    ((r, float(s)) for (r, _), s in zip(head, scores_, strict=True)),
                    key=lambda pair: -pair[1],
                )
            out.append([Hit(self.passage(r), s, self.sentences_of(r)) for r, s in ranked[:k]])
        return out


def rrf(
    lists: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float], k: int
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked ``(row, score)`` lists; ties keep first-seen order."""
    fused: dict[int, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, (row, _) in enumerate(ranked, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: -pair[1])


# Writing ------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """A live document while a version is built: its hash and the rows it owns."""

    sha256: str
    rows: list[tuple[int, int, int]]  # (row, start, end)


class _Ledger:
    """A build's bookkeeping, kept on disk (SQLite in the temporary folder).

    Which documents are live (hash, rows, whether seen in the current change,
    whether written out), which row holds each passage hash, and the first owner
    of each row: on disk so that memory does not grow with the corpus.
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -16384;
            CREATE TABLE documents (
                id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, rows TEXT NOT NULL,
                round INTEGER NOT NULL, written INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID;
            CREATE TABLE hashes (hash TEXT PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE primaries (row INTEGER PRIMARY KEY, document_id TEXT NOT NULL);
            BEGIN;
            """
        )
        self.path = path

    def get(self, doc_id: str) -> tuple[_Entry, int] | None:
        """The live document ``doc_id`` and the round (``add`` call) that last saw it."""
        found = self._db.execute(
            "SELECT sha256, rows, round FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        if found is None:
            return None
        return _Entry(found[0], [tuple(r) for r in json.loads(found[1])]), int(found[2])

    def put(self, doc_id: str, entry: _Entry, round_: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO documents (id, sha256, rows, round) VALUES (?, ?, ?, ?)",
            (doc_id, entry.sha256, json.dumps(entry.rows), round_),
        )

    def seen(self, doc_id: str, round_: int) -> None:
        self._db.execute("UPDATE documents SET round = ? WHERE id = ?", (round_, doc_id))

    def pop(self, doc_id: str) -> None:
        self._db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def entries(self) -> Iterator[tuple[str, _Entry]]:
        for doc_id, sha, rows in self._db.cursor().execute(
            "SELECT id, sha256, rows FROM documents"
        ):
            yield doc_id, _Entry(sha, [tuple(r) for r in json.loads(rows)])

    def take(self, doc_id: str, sha: str) -> list[tuple[int, int, int]] | None:
        """The rows of live document ``doc_id`` at ``sha``, the first time it is asked for."""
        found = self._db.execute(
            "UPDATE documents SET written = 1 WHERE id = ? AND sha256 = ? AND written = 0 "
            "RETURNING rows",
            (doc_id, sha),
        ).fetchone()
        return None if found is None else [tuple(r) for r in json.loads(found[0])]

    def row_of(self, digest: str) -> int | None:
        found = self._db.execute("SELECT row FROM hashes WHERE hash = ?", (digest,)).fetchone()
        return None if found is None else int(found[0])

    def set_row(self, digest: str, row: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?)", (digest, row))

    def add_primary(self, row: int, doc_id: str) -> None:
        self._db.execute("INSERT INTO primaries VALUES (?, ?)", (row, doc_id))

    def primary(self, row: int) -> str:
        found = self._db.execute("SELECT document_id FROM primaries WHERE row = ?", (row,))
        return str(found.fetchone()[0])

    def close(self) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)


@dataclass
class Change:
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    not_found: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.deleted)


def check_embedder(manifest: Manifest, embedder: Embedder) -> None:
    """Refuse to mix vectors: a snapshot is searched and grown only by the embedder that made it."""
    if (manifest.embedder, manifest.dim) != (embedder.name, embedder.dim):
        raise EmbedderMismatchError(
            f"corpus {manifest.corpus} v{manifest.version} was embedded with {manifest.embedder} "
            f"({manifest.dim} dimensions), not {embedder.name} ({embedder.dim})"
        )


class Builder:
    """Builds version ``version`` of a corpus from the previous snapshot and a stream of changes.

    Use as a context manager: leaving it without :meth:`finish` (an error, an
    interrupt) removes the temporary folder; a crash leaves a ``.tmp-*`` folder
    that :func:`sweep` removes.

    Args:
        root: The snapshots root.
        corpus: Corpus name.
        version: The version being built.
        embedder: Encodes new passages' sentences.
        previous: The snapshot this version follows (``None`` or an empty one for the first).
        chunking: How documents are cut into passages.
        dense: How the dense index is chosen.
        compact: Drop tombstoned rows and rebuild the indexes.
        batch: Passages embedded per call.
        progress: Draw progress bars on stderr.
    """

    def __init__(
        self,
        root: Path,
        corpus: str,
        version: int,
        embedder: Embedder,
        previous: Snapshot | None = None,
        chunking: Chunking | None = None,
        dense: DenseConfig | None = None,
        compact: bool = False,
        batch: int = 512,
        progress: bool = False,
    ) -> None:
        self.corpus, self.version, self.embedder = corpus, version, embedder
        self.chunking = chunking or Chunking()
        self.dense_config = dense or DenseConfig()
        self.compact = compact
        self.batch = batch
        self.progress = progress
        self.previous = previous if previous is not None and previous.folder is not None else None
        if self.previous is not None:
            check_embedder(self.previous.manifest, embedder)
        self.change = Change()
        self.corpus_dir = root / corpus
        self.corpus_dir.mkdir(parents=True, exist_ok=True)
        self.token = uuid.uuid4().hex[:8]
        self.tmp = self.corpus_dir / f".tmp-v{version}-{self.token}"
        self.tmp.mkdir()
        self._passages = (self.tmp / "passages.jsonl").open("wb")
        self._offsets = NpyWriter(self.tmp / "passage_offsets.npy", np.int64, None)
        self._vectors = NpyWriter(self.tmp / "vectors.npy", np.float32, embedder.dim)
        self._sentences = NpyWriter(self.tmp / "sentences.npy", np.float32, embedder.dim)
        self._sentence_offsets = NpyWriter(self.tmp / "sentence_offsets.npy", np.int64, None)
        self._new_documents = (self.tmp / "documents.new.jsonl").open("w", encoding="utf-8")
        self._rows = 0
        self._sentence_rows = 0
        self._ledger = _Ledger(self.tmp / "ledger.sqlite")
        self._round = 0  # add() calls: a document seen twice in one call is refused
        self._pending: list[tuple[Passage, str]] = []  # new passages waiting to be embedded
        self._bar: Any = None
        self._sentence_offsets.append(np.zeros(1, dtype=np.int64))
        if self.previous is not None:
            self._carry_over(self.previous)

    # -- context management
    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tmp.exists():
            self.abort()

    def abort(self) -> None:
        self._ledger.close()
        for handle in (self._passages, self._new_documents):
            handle.close()
        for writer in (self._offsets, self._vectors, self._sentences, self._sentence_offsets):
            writer.discard()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- previous version
    def _carry_over(self, previous: Snapshot) -> None:
        assert previous.folder is not None
        keep = np.flatnonzero(previous.live) if self.compact else np.arange(previous.manifest.rows)
        remap = np.full(previous.manifest.rows, -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        with (previous.folder / "documents.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                rows = [(int(remap[r]), s, e) for r, s, e in row["rows"]]
                self._ledger.put(row["id"], _Entry(row["sha256"], rows), self._round)
        for old in keep:
            data = previous.row(int(old))
            self._write_row(data, previous.vectors[old], previous.sentences_of(int(old)))
            if previous.live[old]:
                self._ledger.set_row(data["sha"], self._rows - 1)

    def _write_row(
        self, data: dict[str, Any], vector: NDArray[np.float32], sentences: NDArray[np.float32]
    ) -> None:
        data["row"] = self._rows
        self._offsets.append(np.array([self._passages.tell()], dtype=np.int64))
        self._passages.write(json.dumps(data, ensure_ascii=False).encode() + b"\n")
        self._vectors.append(vector[None, :])
        self._sentences.append(sentences)
        self._sentence_rows += len(sentences)
        self._sentence_offsets.append(np.array([self._sentence_rows], dtype=np.int64))
        self._ledger.add_primary(self._rows, data["document_id"])
        self._rows += 1

    # -- changes
    def add(self, documents: Iterable[Document]) -> Change:
        """Add or replace documents (streamed); unchanged ones (same title and text) are skipped."""
        from tqdm import tqdm

        self._round += 1
        self._bar = tqdm(
            desc=f"{self.corpus}: passages",
            unit="passage",
            file=sys.stderr,
            disable=not self.progress,
        )
        with self._bar:
            for document in documents:
                found = self._ledger.get(document.id)
                if found is not None and found[1] == self._round:
                    raise IngestError(f"document id {document.id!r} appears twice in one change")
                sha = content_hash(document)
                if found is not None and found[0].sha256 == sha:
                    self._ledger.seen(document.id, self._round)
                    self.change.unchanged += 1
                    continue
                if found is not None:
                    self._ledger.pop(document.id)
                    self.change.replaced += 1
                else:
                    self.change.added += 1
                self._insert(document, sha)
            self._flush()
        return self.change

    def delete(self, ids: Iterable[str]) -> Change:
        """Remove documents; their passages become tombstones unless shared with another."""
        for doc_id in ids:
            if self._ledger.get(doc_id) is not None:
                self._ledger.pop(doc_id)
                self.change.deleted += 1
            else:
                self.change.not_found.append(doc_id)
        return self.change

    def _insert(self, document: Document, sha: str) -> None:
        rows: list[tuple[int, int, int]] = []
        for passage in passages_of(document, self.chunking, self.embedder):
            digest = passage_hash(passage.title, passage.text)
            shared = self._ledger.row_of(digest)
            if shared is not None:
                rows.append((shared, passage.start, passage.end))
                continue
            row = self._rows + len(self._pending)
            self._ledger.set_row(digest, row)
            self._pending.append((passage, digest))
            rows.append((row, passage.start, passage.end))
        self._ledger.put(document.id, _Entry(sha, rows), self._round)
        record = {
            "id": document.id,
            "title": document.title,
            "text": document.text,
            "metadata": document.metadata,
            "sha256": sha,
        }
        self._new_documents.write(json.dumps(record, ensure_ascii=False) + "\n")
        if len(self._pending) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        for (passage, digest), (vector, mine) in zip(
            self._pending, self._encode([p for p, _ in self._pending]), strict=True
        ):
            data = {
                "id": passage.id,
                "document_id": passage.document_id,
                "title": passage.title,
                "text": passage.text,
                "start": passage.start,
                "end": passage.end,
                "sentences": [list(s) for s in passage.sentences],
                "sha": digest,
            }
            self._write_row(data, vector, mine)
        if self._bar is not None:
            self._bar.update(len(self._pending))
        self._pending.clear()

    def _encode(
        self, passages: Sequence[Passage]
    ) -> list[tuple[NDArray[np.float32], NDArray[np.float32]]]:
        """Each passage's vector and its sentences' vectors (all read with the title).

        An embedder that reads sentences inside their passage (``encode_passages``)
        needs one forward pass per passage; any other embeds each titled sentence
        and takes the normalised mean as the passage vector.
        """
        dim = self.embedder.dim
        inside = getattr(self.embedder, "encode_passages", None)
        if inside is not None:
            head = [len(titled(p.title, "")) for p in passages]
            vectors, pooled = inside(
                [titled(p.title, p.text) for p in passages],
                head,
                [
                    [(h + s, h + e) for s, e in p.sentences]
                    for p, h in zip(passages, head, strict=True)
                ],
            )
            # Passages are cut to fit one pass (passages_of); a sentence that still runs
            # past the limit (a long run of text without spaces) is read alone.
            missing = [
                (i, j) for i, found in enumerate(pooled) for j, v in enumerate(found) if v is None
            ]
            if missing:
                alone = self.embedder.encode(
                    [
                        titled(
                            passages[i].title, passages[i].text[slice(*passages[i].sentences[j])]
                        )
                        for i, j in missing
                    ]
                )
                for (i, j), vector in zip(missing, alone, strict=True):
                    pooled[i][j] = vector
            return [
                (vectors[i], np.array(pooled[i], dtype=np.float32).reshape(-1, dim))
                for i in range(len(passages))
            ]
        texts = [titled(p.title, p.text[s:e]) for p in passages for s, e in p.sentences]
        encoded = self.embedder.encode(texts) if texts else np.zeros((0, dim), np.float32)
        out = []
        cursor = 0
        for passage in passages:
            mine = encoded[cursor : cursor + len(passage.sentences)]
            cursor += len(passage.sentences)
            mean = mine.sum(axis=0)
            norm = float(np.linalg.norm(mean))
            out.append((mean / norm if norm else mean, mine))
        return out

    # -- finishing
    def finish(self) -> Path:
        """Write the indexes and the manifest, fsync, rename into place; return the folder."""
        self._flush()
        # Rows no live document owns are tombstones; rows owned by several documents, or by
        # another than the one that first wrote them, are listed in owners.json.
        owners = np.zeros(self._rows, dtype=np.int64)
        moved: set[int] = set()
        for doc_id, entry in self._ledger.entries():
            for row, _, _ in entry.rows:
                owners[row] += 1
                if owners[row] == 1 and self._ledger.primary(row) != doc_id:
                    moved.add(row)
        tombstones = np.flatnonzero(owners == 0).astype(np.int64)
        odd = moved | {int(r) for r in np.flatnonzero(owners > 1)}
        unusual: dict[int, list[tuple[str, int, int]]] = {}
        if odd:
            for doc_id, entry in self._ledger.entries():
                for row, start, end in entry.rows:
                    if row in odd:
                        unusual.setdefault(row, []).append((doc_id, start, end))
        for handle in (self._offsets, self._vectors, self._sentences, self._sentence_offsets):
            handle.close()
        self._passages.close()
        self._new_documents.close()
        np.save(self.tmp / "tombstones.npy", tombstones)
        (self.tmp / "owners.json").write_text(
            json.dumps({str(row): found for row, found in sorted(unusual.items())})
        )
        self._write_documents()
        kind = self._write_dense(NpyRows(self.tmp / "vectors.npy"))
        self._write_sparse()
        manifest = Manifest(
            self.corpus,
            self.version,
            self._rows,
            self._rows - len(tombstones),
            self._ledger.count(),
            self.embedder.name,
            self.embedder.dim,
            kind,
            datetime.now(UTC).isoformat(),
            self.chunking.max_tokens,
            self.chunking.overlap,
        )
        self._ledger.close()
        (self.tmp / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
        for path in self.tmp.rglob("*"):
            if path.is_file():
                _fsync(path)
        _fsync(self.tmp)
        final = self.corpus_dir / f"v{self.version}-{self.token}"
        os.rename(self.tmp, final)
        _fsync(self.corpus_dir)
        return final

    def _write_documents(self) -> None:
        with (self.tmp / "documents.jsonl").open("w", encoding="utf-8") as out:
            sources: list[Path] = []
            if self.previous is not None and self.previous.folder is not None:
                sources.append(self.previous.folder / "documents.jsonl")
            sources.append(self.tmp / "documents.new.jsonl")
            for source in sources:
                with source.open(encoding="utf-8") as lines:
                    for line in lines:
                        record = json.loads(line)
                        # None: deleted, replaced by a later line, or written already.
                        rows = self._ledger.take(record["id"], record["sha256"])
                        if rows is None:
                            continue
                        record["rows"] = [list(r) for r in rows]
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        (self.tmp / "documents.new.jsonl").unlink()

    def _write_dense(self, vectors: NpyRows) -> Kind:
        kind = self.dense_config.kind_for(self._rows)
        previous = self.previous
        if kind == "flat":
            return kind
        if (
            previous is not None
            and not self.compact
            and previous.dense is not None
            and previous.dense.kind == kind
        ):
            index = DenseIndex.load(previous.folder / "index.faiss", kind, self.dense_config)  # type: ignore[operator]
            index.add(vectors[len(index) :])
        else:
            index = DenseIndex.build(vectors, self.embedder.dim, self.dense_config)
        index.save(self.tmp / "index.faiss")
        return kind

    def _write_sparse(self) -> None:
        def texts() -> Iterator[str]:
            with (self.tmp / "passages.jsonl").open(encoding="utf-8") as lines:
                for line in lines:
                    data = json.loads(line)
                    yield f"{data['title']} {data['text']}"

        write_index(texts(), self.tmp / "bm25")


# Reading ------------------------------------------------------------------------------------


def read_manifest(folder: Path) -> Manifest:
    """What the snapshot in ``folder`` holds, without loading its indexes."""
    try:
        raw = json.loads((folder / "manifest.json").read_text())
        if raw.get("format") != FORMAT:
            raise SnapshotError(
                f"snapshot {folder} has format {raw.get('format')}, this version reads "
                f"{FORMAT}; add the corpus's documents again"
            )
        return Manifest(**raw)
    except (OSError, ValueError, TypeError) as exc:
        raise SnapshotError(f"cannot load snapshot {folder}: {exc}") from exc


def load(folder: Path, dense_config: DenseConfig | None = None) -> Snapshot:
    """Load the snapshot in ``folder`` and check that its parts agree."""
    dense_config = dense_config or DenseConfig()
    manifest = read_manifest(folder)
    try:
        offsets = np.load(folder / "passage_offsets.npy")
        handle = (folder / "passages.jsonl").open("rb")
        lines = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if manifest.rows else b""
        handle.close()
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        sentences = np.load(folder / "sentences.npy", mmap_mode="r")
        sentence_offsets = np.load(folder / "sentence_offsets.npy")
        tombstones = np.load(folder / "tombstones.npy")
        owners = {
            int(row): [tuple(o) for o in found]
            for row, found in json.loads((folder / "owners.json").read_text()).items()
        }
        if manifest.dense == "flat":
            dense = DenseIndex.build(np.asarray(vectors), manifest.dim, DenseConfig(kind="flat"))
        else:
            dense = DenseIndex.load(
                folder / "index.faiss",
                manifest.dense,  # type: ignore[arg-type]
                dense_config,
                exact=vectors,
            )
        sparse = SparseIndex.load(folder / "bm25", manifest.rows)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise SnapshotError(f"cannot load snapshot {folder}: {exc}") from exc
    where = f"snapshot {manifest.corpus} v{manifest.version}"
    sizes = {len(offsets), len(vectors), len(sentence_offsets) - 1, len(dense)}
    if sizes != {manifest.rows} or int(sentence_offsets[-1]) != len(sentences):
        raise SnapshotError(f"{where}: its parts disagree on the number of passages")

    def line(row: int) -> bytes:
        start = int(offsets[row])
        end = int(offsets[row + 1]) if row + 1 < len(offsets) else len(lines)
        return bytes(lines[start:end])

    return Snapshot(
        manifest,
        folder,
        line,
        vectors,
        sentences,
        sentence_offsets,
        tombstones,
        owners,
        dense,
        sparse,
    )


def documents(source: Snapshot | Path, skip: int = 0) -> Iterator[dict[str, Any]]:
    """The live documents of a snapshot (or its folder), as stored, after the first ``skip``.

    Each is ``{id, title, text, metadata, sha256, rows}``, ``rows`` holding
    ``[row, start, end]`` of its passages. Skipped documents are not parsed.
    """
    folder = source if isinstance(source, Path) else source.folder
    if folder is None:
        return
    with (folder / "documents.jsonl").open(encoding="utf-8") as lines:
        for line in itertools.islice(lines, skip, None):
            yield json.loads(line)


def find_document(source: Snapshot | Path, document_id: str) -> dict[str, Any] | None:
    """One live document (as :func:`documents` gives it), or None.

    A scan of ``documents.jsonl`` that parses only the line written for that id.
    """
    folder = source if isinstance(source, Path) else source.folder
    if folder is None:
        return None
    start = '{"id": ' + json.dumps(document_id, ensure_ascii=False) + ","
    with (folder / "documents.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(start):
                found: dict[str, Any] = json.loads(line)
                return found
    return None


def sweep(corpus_dir: Path, keep: Iterable[Path], older_than_s: float = 3600.0) -> list[Path]:
    """Remove folders left by interrupted writers; return what went.

    A ``.tmp-*`` folder is a build that never finished; a snapshot folder not in
    ``keep`` was finished but never recorded as a version. Only folders older
    than ``older_than_s`` go, so a writer still at work is left alone.
    """
    kept = {p.resolve() for p in keep}
    removed: list[Path] = []
    if not corpus_dir.exists():
        return removed
    now = datetime.now(UTC).timestamp()
    for child in corpus_dir.iterdir():
        if not child.is_dir() or child.resolve() in kept:
            continue
        if now - child.stat().st_mtime >= older_than_s:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed
