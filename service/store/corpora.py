"""Corpora, their versions and their documents."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retrieval.types import Document as SourceDocument
from service.errors import ConflictError
from service.store.models import Corpus, CorpusVersion, Document


def content_hash(document: SourceDocument) -> str:
    return hashlib.sha256(f"{document.title}\x00{document.text}".encode()).hexdigest()


def get_corpus(db: Session, name: str) -> Corpus | None:
    return db.scalar(select(Corpus).where(Corpus.name == name))


def list_corpora(db: Session) -> list[Corpus]:
    return list(db.scalars(select(Corpus).order_by(Corpus.name)))


def create_corpus(db: Session, name: str, description: str = "") -> Corpus:
    corpus = Corpus(name=name, description=description, current_version=0)
    db.add(corpus)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise ConflictError(f"corpus {name!r} already exists", "corpus_exists") from exc
    return corpus


def version_row(db: Session, corpus: Corpus, version: int) -> CorpusVersion | None:
    return db.scalar(
        select(CorpusVersion).where(
            CorpusVersion.corpus_id == corpus.id, CorpusVersion.version == version
        )
    )


def live_hashes(db: Session, corpus: Corpus) -> dict[str, str]:
    """External id → content hash of every document not deleted."""
    rows = db.execute(
        select(Document.external_id, Document.sha256).where(
            Document.corpus_id == corpus.id, Document.deleted_version.is_(None)
        )
    )
    return {external_id: sha for external_id, sha in rows}  # noqa: C416 (rows are Row objects)


def live_document_count(db: Session, corpus: Corpus) -> int:
    return int(
        db.scalar(
            select(func.count()).where(
                Document.corpus_id == corpus.id, Document.deleted_version.is_(None)
            )
        )
        or 0
    )


@dataclass(frozen=True)
class NewVersion:
    version: int
    documents: int
    passages: int
    embedder: str
    snapshot_path: str


def record_version(
    db: Session, corpus: Corpus, new: NewVersion, upserts: Sequence[SourceDocument]
) -> None:
    """Store new and replaced documents and make ``new`` the current version, in one transaction.

    Fails with ``ConflictError`` when another writer made a version first.
    """
    conflict = ConflictError(
        f"corpus {corpus.name!r} changed while documents were added; retry", "corpus_changed"
    )
    try:
        existing = {
            doc.external_id: doc
            for doc in db.scalars(
                select(Document).where(
                    Document.corpus_id == corpus.id,
                    Document.external_id.in_([d.id for d in upserts]),
                )
            )
        }
        for source in upserts:
            row = existing.get(source.id)
            if row is None:
                row = Document(corpus_id=corpus.id, external_id=source.id)
                db.add(row)
            row.title, row.text, row.metadata_ = source.title, source.text, dict(source.metadata)
            row.sha256, row.added_version = content_hash(source), new.version
            row.deleted_version = None
        db.add(
            CorpusVersion(
                corpus_id=corpus.id,
                version=new.version,
                documents=new.documents,
                passages=new.passages,
                embedder=new.embedder,
                snapshot_path=new.snapshot_path,
            )
        )
        moved = db.execute(
            update(Corpus)
            .where(Corpus.id == corpus.id, Corpus.current_version == new.version - 1)
            .values(current_version=new.version)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise conflict
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise conflict from exc
    except BaseException:
        db.rollback()
        raise
