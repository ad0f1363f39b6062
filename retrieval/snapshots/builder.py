"""Writing the next version of a corpus: a new snapshot folder, made atomically."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from retrieval.embedders import Embedder
from retrieval.errors import EmbedderMismatchError, IngestError
from retrieval.index import DenseConfig, DenseIndex, Kind, NpyRows
from retrieval.ingest import chunk
from retrieval.snapshots.format import (
    Manifest,
    NpyWriter,
    content_hash,
    fsync,
    passage_hash,
)
from retrieval.snapshots.ledger import Entry, Ledger
from retrieval.snapshots.snapshot import Snapshot
from retrieval.sparse import write_index
from retrieval.text import titled
from retrieval.types import Document, Passage


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
        report: Told how many documents of a change have been read, as they are.
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
        report: Callable[[int], None] | None = None,
    ) -> None:
        self.corpus, self.version, self.embedder = corpus, version, embedder
        self.chunking = chunking or Chunking()
        self.dense_config = dense or DenseConfig()
        self.compact = compact
        self.batch = batch
        self.progress = progress
        self.report = report
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
        self._ledger = Ledger(self.tmp / "ledger.sqlite")
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
                self._ledger.put(row["id"], Entry(row["sha256"], rows), self._round)
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
            for read, document in enumerate(documents, start=1):
                if self.report is not None:
                    self.report(read)
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
        self._ledger.put(document.id, Entry(sha, rows), self._round)
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
                fsync(path)
        fsync(self.tmp)
        final = self.corpus_dir / f"v{self.version}-{self.token}"
        os.rename(self.tmp, final)
        fsync(self.corpus_dir)
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
