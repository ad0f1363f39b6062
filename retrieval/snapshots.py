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
import json
import mmap
import os
import shutil
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
from retrieval.errors import IngestError, SnapshotError
from retrieval.index import DenseConfig, DenseIndex, Kind
from retrieval.ingest import chunk
from retrieval.sparse import SparseIndex
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
    dense: str  # flat, hnsw or ivf
    created_at: str
    chunk_tokens: int = 200
    chunk_overlap: int = 30
    format: int = FORMAT


@dataclass(frozen=True)
class Chunking:
    max_tokens: int = 200
    overlap: int = 30


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
            SparseIndex.build([]),
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
        self._primary: list[str] = []  # first owner of each row
        self._by_hash: dict[str, int] = {}  # passage hash -> row, live rows only
        self._catalogue: dict[str, _Entry] = {}
        self._removed: set[str] = set()  # previous documents dropped from this version
        self._pending: list[tuple[Passage, str]] = []  # new passages waiting to be embedded
        self._bar: Any = None
        self._remap: dict[int, int] = {}
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
        for handle in (self._passages, self._new_documents):
            handle.close()
        for writer in (self._offsets, self._vectors, self._sentences, self._sentence_offsets):
            writer.discard()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- previous version
    def _carry_over(self, previous: Snapshot) -> None:
        assert previous.folder is not None
        with (previous.folder / "documents.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                self._catalogue[row["id"]] = _Entry(row["sha256"], [tuple(r) for r in row["rows"]])
        keep = np.flatnonzero(previous.live) if self.compact else np.arange(previous.manifest.rows)
        for old in keep:
            data = previous.row(int(old))
            self._remap[int(old)] = self._rows
            self._write_row(data, previous.vectors[old], previous.sentences_of(int(old)))
            if previous.live[old]:
                self._by_hash[data["sha"]] = self._rows - 1
        if self.compact:
            for entry in self._catalogue.values():
                entry.rows = [(self._remap[r], s, e) for r, s, e in entry.rows]

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
        self._primary.append(data["document_id"])
        self._rows += 1

    # -- changes
    def add(self, documents: Iterable[Document]) -> Change:
        """Add or replace documents (streamed); unchanged ones (same title and text) are skipped."""
        from tqdm import tqdm

        seen: set[str] = set()
        self._bar = tqdm(
            desc=f"{self.corpus}: passages",
            unit="passage",
            file=sys.stderr,
            disable=not self.progress,
        )
        with self._bar:
            for document in documents:
                if document.id in seen:
                    raise IngestError(f"document id {document.id!r} appears twice in one change")
                seen.add(document.id)
                sha = content_hash(document)
                entry = self._catalogue.get(document.id)
                if entry is not None and entry.sha256 == sha:
                    self.change.unchanged += 1
                    continue
                if entry is not None:
                    self._drop(document.id)
                    self.change.replaced += 1
                else:
                    self.change.added += 1
                self._insert(document, sha)
            self._flush()
        return self.change

    def delete(self, ids: Iterable[str]) -> Change:
        """Remove documents; their passages become tombstones unless shared with another."""
        for doc_id in ids:
            if doc_id in self._catalogue:
                self._drop(doc_id)
                self.change.deleted += 1
            else:
                self.change.not_found.append(doc_id)
        return self.change

    def _drop(self, doc_id: str) -> None:
        self._catalogue.pop(doc_id)
        self._removed.add(doc_id)

    def _insert(self, document: Document, sha: str) -> None:
        rows: list[tuple[int, int, int]] = []
        for passage in chunk(document, self.chunking.max_tokens, self.chunking.overlap):
            digest = passage_hash(passage.title, passage.text)
            shared = self._by_hash.get(digest)
            if shared is not None:
                rows.append((shared, passage.start, passage.end))
                continue
            row = self._rows + len(self._pending)
            self._by_hash[digest] = row
            self._pending.append((passage, digest))
            rows.append((row, passage.start, passage.end))
        self._catalogue[document.id] = _Entry(sha, rows)
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
        texts = [titled(p.title, p.text[s:e]) for p, _ in self._pending for s, e in p.sentences]
        vectors = (
            self.embedder.encode(texts) if texts else np.zeros((0, self.embedder.dim), np.float32)
        )
        cursor = 0
        for passage, digest in self._pending:
            mine = vectors[cursor : cursor + len(passage.sentences)]
            cursor += len(passage.sentences)
            # The passage vector is the normalised mean of its (titled) sentence vectors:
            # one forward pass per sentence serves both retrieval and verification.
            mean = mine.sum(axis=0)
            norm = float(np.linalg.norm(mean))
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
            self._write_row(data, mean / norm if norm else mean, mine)
        if self._bar is not None:
            self._bar.update(len(self._pending))
        self._pending.clear()

    # -- finishing
    def finish(self) -> Path:
        """Write the indexes and the manifest, fsync, rename into place; return the folder."""
        self._flush()
        owners: dict[int, list[tuple[str, int, int]]] = {}
        for doc_id, entry in self._catalogue.items():
            for row, start, end in entry.rows:
                owners.setdefault(row, []).append((doc_id, start, end))
        tombstones = np.array(sorted(set(range(self._rows)) - set(owners)), dtype=np.int64)
        unusual = {
            row: found
            for row, found in owners.items()
            if len(found) > 1 or found[0][0] != self._primary[row]
        }
        for handle in (self._offsets, self._vectors, self._sentences, self._sentence_offsets):
            handle.close()
        self._passages.close()
        self._new_documents.close()
        np.save(self.tmp / "tombstones.npy", tombstones)
        (self.tmp / "owners.json").write_text(
            json.dumps({str(row): found for row, found in sorted(unusual.items())})
        )
        self._write_documents()
        vectors = np.load(self.tmp / "vectors.npy", mmap_mode="r")
        kind = self._write_dense(vectors)
        self._write_sparse()
        manifest = Manifest(
            self.corpus,
            self.version,
            self._rows,
            self._rows - len(tombstones),
            len(self._catalogue),
            self.embedder.name,
            self.embedder.dim,
            kind,
            datetime.now(UTC).isoformat(),
            self.chunking.max_tokens,
            self.chunking.overlap,
        )
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
            written: set[str] = set()
            for source in sources:
                with source.open(encoding="utf-8") as lines:
                    for line in lines:
                        record = json.loads(line)
                        entry = self._catalogue.get(record["id"])
                        if entry is None or entry.sha256 != record["sha256"]:
                            continue  # deleted, or replaced by a later line
                        if record["id"] in written:
                            continue
                        written.add(record["id"])
                        record["rows"] = [list(r) for r in entry.rows]
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        (self.tmp / "documents.new.jsonl").unlink()

    def _write_dense(self, vectors: NDArray[np.float32]) -> Kind:
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

        SparseIndex.build(texts()).save(self.tmp / "bm25")


# Reading ------------------------------------------------------------------------------------


def load(folder: Path, dense_config: DenseConfig | None = None) -> Snapshot:
    """Load the snapshot in ``folder`` and check that its parts agree."""
    dense_config = dense_config or DenseConfig()
    try:
        raw = json.loads((folder / "manifest.json").read_text())
        if raw.get("format") != FORMAT:
            raise SnapshotError(
                f"snapshot {folder} has format {raw.get('format')}, this version reads "
                f"{FORMAT}; add the corpus's documents again"
            )
        manifest = Manifest(**raw)
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
            dense = DenseIndex.load(folder / "index.faiss", manifest.dense, dense_config)  # type: ignore[arg-type]
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


def documents(snapshot: Snapshot) -> Iterator[dict[str, Any]]:
    """The live documents of a snapshot, as stored (id, title, text, metadata, sha256, rows)."""
    if snapshot.folder is None:
        return
    with (snapshot.folder / "documents.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


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
