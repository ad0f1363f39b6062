"""Building the long-lived parts once: database, models, corpora, the checker."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from claims.calibration import Calibration
from claims.extraction import Extractor
from claims.verification import Verifier
from retrieval.embedders import Embedder
from service.corpora import Corpora
from service.pipeline import CalibrationLookup, Checker
from service.settings import Settings
from service.store import db as store_db

if TYPE_CHECKING:
    from spacy.language import Language

    from claims.llm import ChatClient

log = logging.getLogger("claimsieve")


@dataclass
class Components:
    engine: Engine
    sessions: sessionmaker[Session]
    checker: Checker


def open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    url = settings.resolved_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.migrate_on_start:
        store_db.upgrade(url)
    engine = store_db.make_engine(url)
    return engine, store_db.make_session_factory(engine)


def calibration_lookup(sessions: sessionmaker[Session]) -> CalibrationLookup:
    """The latest calibration of a corpus, read at each check (a new fit applies at once)."""
    from service.store import calibrations as calibration_store

    def lookup(corpus: str, db: Session | None) -> tuple[int, Calibration] | None:
        with contextlib.nullcontext(db) if db is not None else sessions() as session:
            row = calibration_store.latest(session, corpus)
            return (row.id, calibration_store.as_fitted(row)) if row else None

    return lookup


def chat_client(settings: Settings) -> ChatClient:
    from claims.llm import ChatClient

    assert settings.llm_base_url and settings.llm_model  # Settings checks this
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return ChatClient(
        settings.llm_base_url,
        settings.llm_model,
        key,
        timeout_s=settings.llm_timeout_s,
        retries=settings.llm_retries,
    )


def default_head_path() -> Path:
    """The head shipped inside the package (``claims/heads/default``)."""
    return Path(__file__).resolve().parent.parent / "claims" / "heads" / "default"


def make_verifier(settings: Settings, encoder: Any, nlp: Language) -> Verifier:
    """The verifier the settings ask for (the learned ``features`` head by default)."""
    if settings.verifier == "features":
        from claims import cross
        from claims import head as heads
        from claims.features import FEATURES, FeatureExtractor
        from claims.verification import FeaturesVerifier, load_gate

        folder = settings.verifier_head or default_head_path()
        head = heads.load(folder, FEATURES)
        mate = (
            cross.load(folder, settings.embedder_path, settings.runtime, settings.cross_int8)
            if settings.verifier_cross
            else None
        )
        extractor = FeatureExtractor(encoder, nlp, settings.evidence_memo)
        return FeaturesVerifier(extractor, head, mate, load_gate(folder))
    if settings.verifier == "nli":
        from claims.nli import NLIVerifier, parse_label_order

        assert settings.nli_path is not None  # Settings checks this
        return NLIVerifier(settings.nli_path, parse_label_order(settings.nli_labels))
    if settings.verifier == "llm":
        from claims.llm import LLMVerifier

        return LLMVerifier(chat_client(settings))
    from claims.verification import SimilarityRulesVerifier

    return SimilarityRulesVerifier(encoder, nlp)


def make_extractor(settings: Settings, parse: Extractor) -> Extractor:
    """The extractor the settings ask for; the LLM one falls back to ``parse``."""
    if settings.extractor == "parse":
        return parse
    from claims.llm import LLMExtractor

    return LLMExtractor(chat_client(settings), parse, settings.max_text_chars)


def build(settings: Settings, embedder: Embedder | None = None) -> Components:
    """Open the database, load the models and the default corpus (building it on first use).

    Args:
        settings: Service settings.
        embedder: Use this embedder instead of loading MiniLM (tests pass a fake).
    """
    from claims.extraction import ParseExtractor
    from claims.nlp import load_spacy
    from retrieval.builtin import NAME as BUILTIN
    from retrieval.builtin import python_reference
    from retrieval.embedders import MemoEmbedder, MiniLMEmbedder
    from retrieval.rerank import load_reranker

    engine, sessions = open_database(settings)
    if embedder is None:
        log.info("loading the sentence embedder")
        embedder = MiniLMEmbedder(settings.embedder_path, runtime=settings.runtime)
    nlp = load_spacy(settings.spacy_model)
    corpora = Corpora(
        sessions,
        settings.snapshot_dir,
        embedder,
        settings.chunking(),
        settings.dense(),
        settings.retain_versions,
    )
    corpora.recover()
    if settings.build_default_corpus and settings.default_corpus == BUILTIN:
        corpora.ensure(BUILTIN, python_reference)
    # Queries go through a memo (a check encodes its claims for retrieval, then to verify);
    # corpus ingestion does not, since each passage is encoded once anyway.
    queries = MemoEmbedder(embedder)
    checker = Checker(
        extractor=make_extractor(settings, ParseExtractor(nlp, settings.max_text_chars)),
        embedder=queries,
        verifier=make_verifier(settings, queries, nlp),
        corpora=corpora,
        default_corpus=settings.default_corpus,
        top_k=settings.top_k,
        review_threshold=settings.review_threshold,
        mode=settings.search_mode,
        fusion=settings.fusion(),
        rerank=load_reranker(settings.reranker_path) if settings.reranker_path else None,
        calibrations=calibration_lookup(sessions),
        double_review_share=settings.double_review_share,
        max_claims=settings.max_claims_per_request,
        max_chars=settings.max_text_chars,
        verdict_memo=settings.verdict_memo,
    )
    return Components(engine, sessions, checker)
