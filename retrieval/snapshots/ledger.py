"""A build's bookkeeping, kept on disk beside the version it writes (see :class:`Ledger`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Entry:
    """A live document while a version is built: its hash and the rows it owns."""

    sha256: str
    rows: list[tuple[int, int, int]]  # (row, start, end)


class Ledger:
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

    def get(self, doc_id: str) -> tuple[Entry, int] | None:
        """The live document ``doc_id`` and the round (``add`` call) that last saw it."""
        found = self._db.execute(
            "SELECT sha256, rows, round FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        if found is None:
            return None
        return Entry(found[0], [tuple(r) for r in json.loads(found[1])]), int(found[2])

    def put(self, doc_id: str, entry: Entry, round_: int) -> None:
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

    def entries(self) -> Iterator[tuple[str, Entry]]:
        for doc_id, sha, rows in self._db.cursor().execute(
            "SELECT id, sha256, rows FROM documents"
        ):
            yield doc_id, Entry(sha, [tuple(r) for r in json.loads(rows)])

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
