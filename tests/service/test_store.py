"""The store on SQLite and PostgreSQL: migrations, models, repository functions."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.errors import ConflictError, NotFoundError
from service.store import corpora as corpus_store
from service.store import db as store_db
from service.store import keys as key_store
from service.store.corpora import NewVersion
from service.store.models import Base


def test_migrations_match_the_models_and_downgrade_to_base(database_url: str) -> None:
    store_db.upgrade(database_url)
    engine = store_db.make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    store_db.downgrade(database_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    store_db.upgrade(database_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_keys_are_stored_hashed_and_can_be_revoked(migrated_url: str) -> None:
    engine = store_db.make_engine(migrated_url)
    sessions = store_db.make_session_factory(engine)
    with sessions() as db:
        key, plaintext = key_store.create_key(db, "ana", "trainer")
        assert plaintext not in (key.key_hash, key.prefix) and key.key_hash != plaintext
        assert key_store.find_active_key(db, plaintext).name == "ana"  # type: ignore[union-attr]
        assert key_store.find_active_key(db, plaintext + "x") is None
        key_store.revoke_key(db, key.id)
        assert key_store.find_active_key(db, plaintext) is None
        with pytest.raises(NotFoundError):
            key_store.revoke_key(db, 12345)
    engine.dispose()


def test_a_version_is_recorded_once_and_a_stale_writer_gets_a_conflict(migrated_url: str) -> None:
    engine = store_db.make_engine(migrated_url)
    sessions = store_db.make_session_factory(engine)
    with sessions() as db:
        corpus = corpus_store.create_corpus(db, "c1")
        with pytest.raises(ConflictError):
            corpus_store.create_corpus(db, "c1")
        corpus_store.record_version(db, corpus, NewVersion(1, 2, 2, "fake", "/tmp/v1"))
        # A second writer that also built "version 1" must not overwrite the first.
        with pytest.raises(ConflictError):
            corpus_store.record_version(db, corpus, NewVersion(1, 2, 2, "fake", "/tmp/v1b"))
        stale = NewVersion(3, 2, 2, "fake", "/tmp/v3")
        with pytest.raises(ConflictError):
            corpus_store.record_version(db, corpus, stale)
        db.refresh(corpus)
        assert corpus.current_version == 1
        assert [v.snapshot_path for v in corpus_store.list_versions(db, corpus)] == ["/tmp/v1"]
    engine.dispose()
