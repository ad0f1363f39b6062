"""Corpora and their versions. Documents live in the versions' snapshots, not here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import ConflictError
from service.store.models import Corpus, CorpusVersion


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


def delete_empty_corpus(db: Session, name: str) -> None:
    """Remove corpus ``name`` if it has no version yet (a failed first ingestion)."""
    corpus = get_corpus(db, name)
    if corpus is not None and corpus.current_version == 0:
        db.delete(corpus)
        db.commit()


def version_row(db: Session, corpus: Corpus, version: int) -> CorpusVersion | None:
    return db.scalar(
        select(CorpusVersion).where(
            CorpusVersion.corpus_id == corpus.id, CorpusVersion.version == version
        )
    )


def list_versions(db: Session, corpus: Corpus) -> list[CorpusVersion]:
    return list(
        db.scalars(
            select(CorpusVersion)
            .where(CorpusVersion.corpus_id == corpus.id)
            .order_by(CorpusVersion.version)
        )
    )


@dataclass(frozen=True)
class NewVersion:
    version: int
    documents: int
    passages: int
    embedder: str
    snapshot_path: str


def record_version(db: Session, corpus: Corpus, new: NewVersion) -> None:
    """Make ``new`` the current version, in one transaction.

    Fails with ``ConflictError`` when another writer made a version first.
    """
    conflict = ConflictError(
        f"corpus {corpus.name!r} changed while this change was built; retry", "corpus_changed"
    )
    try:
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
