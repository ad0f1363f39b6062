"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable), models, apps."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from service.store import db as store_db
from service.store.models import ApiKey
from tests.factories import Api, FakeEmbedder, make_settings, open_api, reset

POSTGRES_URL = os.environ.get(
    "CLAIMSIEVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("CLAIMSIEVE_REQUIRE_POSTGRES") == "1"


def _postgres_reachable() -> bool:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    available = _postgres_reachable()
    if not available and REQUIRE_POSTGRES:
        pytest.fail(
            f"PostgreSQL is required (CLAIMSIEVE_REQUIRE_POSTGRES=1) but {POSTGRES_URL} "
            "is not reachable"
        )
    return available


@pytest.fixture
def postgres_url(postgres_available: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if not postgres_available:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    name = f"claimsieve_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    store_db.upgrade(database_url)
    return database_url


@pytest.fixture(scope="session")
def nlp() -> Any:
    from claims.nlp import load_spacy

    return load_spacy()


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The real MiniLM embedder, loaded once per test session."""
    from retrieval.embedders import MiniLMEmbedder

    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, set[int]]]:
    for api in open_api(make_settings(tmp_path_factory.mktemp("api")), FakeEmbedder()):
        with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
            keys = set(db.scalars(select(ApiKey.id)))
        yield api, keys


@pytest.fixture
def api(shared_api: tuple[Api, set[int]]) -> Iterator[Api]:
    """An app on SQLite with a fake embedder, real spaCy and a small corpus named docs.

    Built once per session; each test gets it as it was built (:func:`reset`).
    """
    app, keys = shared_api
    yield app
    reset(app, keys)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def api_any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The same app, once on SQLite and once on PostgreSQL."""
    overrides: dict[str, Any] = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    yield from open_api(make_settings(tmp_path, **overrides), FakeEmbedder())
