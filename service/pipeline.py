"""The one composition of extract → retrieve → verify → aggregate.

HTTP routes and the command line call ``Checker``; a verdict from either is
the same computation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from claims import timing
from claims.aggregation import (
    Standing,
    is_flagged,
    preference_pairs,
    rank,
    standing,
    summarise,
)
from claims.calibration import Calibration
from claims.errors import ClaimsError
from claims.extraction import Extraction, Extractor, validate_text
from claims.types import (
    CheckResult,
    Claim,
    ClaimResult,
    Label,
    Span,
    Verdict,
    as_passage,
    new_id,
)
from claims.verification import Preparing, Verifier
from retrieval.embedders import Embedder, Memo
from retrieval.snapshots import Fusion, Mode, Reranker, Snapshot
from retrieval.types import Hit
from service.corpora import Corpora
from service.errors import BadRequestError, NotFoundError, ServiceError, UnknownCorpusError

# The current calibration of a corpus (its id and the fit), read through the session given
# (the caller's), or a session of its own.
CalibrationLookup = Callable[[str, Session | None], tuple[int, Calibration] | None]


def second_review(claim_id: str, share: float) -> bool:
    """Whether a claim is one of the ``share`` handed to a second trainer (fixed per claim)."""
    return int(hashlib.sha256(claim_id.encode()).hexdigest()[:8], 16) / 2**32 < share


def calibrated(verdict: Verdict, calibration: Calibration) -> Verdict:
    scores = calibration.apply({str(k): v for k, v in verdict.scores.items()})
    by_label = {Label(k): v for k, v in scores.items()}
    best = max(by_label, key=lambda k: by_label[k])
    return replace(verdict, label=best, confidence=by_label[best], scores=by_label)


class Checker:
    """Checks responses (or bare claims) against a corpus.

    Args:
        extractor: Splits responses into claims.
        embedder: Encodes claims for retrieval.
        verifier: Decides verdicts from retrieved passages.
        corpora: The corpora and their current snapshots.
        default_corpus: Corpus used when a request names none.
        top_k: Evidence passages per claim.
        review_threshold: Confidence below which a verdict is flagged for review.
        max_claims: Most claims one request may produce.
        max_chars: Longest response or claim accepted.
        mode: hybrid (dense and BM25 fused), dense or sparse retrieval.
        fusion: Rank fusion weights.
        rerank: Reorders fused candidates (a cross-encoder), when given.
        calibrations: The current confidence calibration of a corpus, if it has one.
        double_review_share: Share of claims that need two trainers' reviews.
        verdict_memo: Verdicts remembered by claim text, corpus version and verifier.
    """

    def __init__(
        self,
        extractor: Extractor,
        embedder: Embedder,
        verifier: Verifier,
        corpora: Corpora,
        default_corpus: str,
        top_k: int = 5,
        review_threshold: float = 0.6,
        max_claims: int = 200,
        max_chars: int = 20_000,
        mode: Mode = "hybrid",
        fusion: Fusion | None = None,
        rerank: Reranker | None = None,
        calibrations: CalibrationLookup | None = None,
        double_review_share: float = 0.0,
        verdict_memo: int = 4096,
    ) -> None:
        self.extractor = extractor
        self.embedder = embedder
        self.verifier = verifier
        self.corpora = corpora
        self.default_corpus = default_corpus
        self.top_k = top_k
        self.review_threshold = review_threshold
        self.max_claims = max_claims
        self.max_chars = max_chars
        self.mode: Mode = mode
        self.fusion = fusion or Fusion()
        self.rerank = rerank
        self.calibrations = calibrations
        self.double_review_share = double_review_share
        self._verdict_memo: Memo[Verdict] = Memo(verdict_memo)

    def check(
        self,
        text: str,
        prompt: str | None = None,
        corpus: str | None = None,
        top_k: int | None = None,
        db: Session | None = None,
    ) -> CheckResult:
        """Split ``text`` into claims and verify each checkworthy one against the corpus.

        ``db``: the caller's session, through which the corpus version and its
        calibration are read (else the checker opens its own).
        """
        with timing.recording() as timings, timing.stage("total"):
            name, snapshot = self._corpus(corpus, db)
            with timing.stage("extraction"):
                extraction = self.extractor.extract(text, prompt=prompt)
            result = self._judge(
                "check",
                extraction.claims,
                text,
                prompt,
                name,
                snapshot,
                top_k,
                extraction.made_by,
                db,
            )
        return replace(result, notices=extraction.notices, timings=timings)

    def verify(
        self,
        claim_texts: Sequence[str],
        corpus: str | None = None,
        top_k: int | None = None,
        db: Session | None = None,
    ) -> CheckResult:
        """Verify claims as given, without splitting them (``db`` as for :meth:`check`)."""
        with timing.recording() as timings, timing.stage("total"):
            name, snapshot = self._corpus(corpus, db)
            for claim_text in claim_texts:
                validate_text(claim_text, self.max_chars)
            claims = [_given(t) for t in claim_texts]
            result = self._judge("verify", claims, None, None, name, snapshot, top_k, None, db)
        return replace(result, timings=timings)

    def search(
        self, corpus: str, query: str, k: int, mode: Mode | None = None
    ) -> tuple[int, list[Hit]]:
        """The corpus version searched and its ``k`` best passages for ``query``."""
        snapshot = self.corpora.searchable(corpus)
        if snapshot is None:
            raise NotFoundError(f"no corpus named {corpus!r}", "corpus_not_found")
        hits = snapshot.search(
            self.embedder.encode([query]), [query], k, mode or self.mode, self.fusion, self.rerank
        )
        return snapshot.version, hits[0]

    def _corpus(self, corpus: str | None, db: Session | None) -> tuple[str, Snapshot]:
        name = corpus or self.default_corpus
        with timing.stage("corpus"):
            snapshot = self.corpora.searchable(name, db)
        if snapshot is None:
            raise UnknownCorpusError(f"no corpus named {name!r}")
        return name, snapshot

    def check_many(
        self, items: Sequence[Screened], top_k: int | None = None
    ) -> list[CheckResult | ClaimsError | ServiceError]:
        """Check many responses (or lists of claims) together: one embedder call, one search
        and one verifier call for the claims of all items that name the same corpus.

        The verdict of a claim is the one :meth:`check` gives it. An item that cannot be
        checked (empty or too long, an unknown corpus, too many claims) comes back as its
        error, in its place; the others are checked.
        """
        out: list[CheckResult | ClaimsError | ServiceError | None] = [None] * len(items)
        made: dict[str, list[tuple[int, Extraction]]] = {}
        snapshots: dict[str, Snapshot] = {}
        for index, item in enumerate(items):
            try:
                name, snapshot = self._corpus(item.corpus, None)
                extraction = self._claims_of(item)
                self._within_limit(extraction.claims)
            except (ClaimsError, ServiceError) as exc:
                out[index] = exc
                continue
            snapshots[name] = snapshot
            made.setdefault(name, []).append((index, extraction))
        for name, extracted in made.items():
            snapshot = snapshots[name]
            checkable = [c for _, e in extracted for c in e.claims if c.checkworthy]
            verdicts = iter(self._verdicts(checkable, snapshot, top_k))
            for index, extraction in extracted:
                item = items[index]
                mine = [next(verdicts) for c in extraction.claims if c.checkworthy]
                result = self._result(
                    "verify" if item.claims is not None else "check",
                    extraction.claims,
                    mine,
                    item.text,
                    item.prompt,
                    name,
                    snapshot,
                    extraction.made_by if item.claims is None else None,
                    None,
                )
                out[index] = replace(result, notices=extraction.notices)
        return [found for found in out if found is not None]

    def rank(
        self,
        prompt: str,
        responses: Sequence[str],
        corpus: str | None = None,
        top_k: int | None = None,
    ) -> Ranking:
        """Check responses to one prompt together and order them, most factual first.

        Raises:
            The error of the first response that cannot be checked.
        """
        items = [
            Screened(n, text, prompt=prompt, corpus=corpus) for n, text in enumerate(responses)
        ]
        results: list[CheckResult] = []
        for found in self.check_many(items, top_k):
            if isinstance(found, ClaimsError | ServiceError):
                raise found
            results.append(found)
        ranked = rank([standing(n, r.results) for n, r in enumerate(results)])
        return Ranking(prompt, list(responses), results, ranked, preference_pairs(ranked))

    def _claims_of(self, item: Screened) -> Extraction:
        if item.claims is not None:
            for claim_text in item.claims:
                validate_text(claim_text, self.max_chars)
            return Extraction([_given(t) for t in item.claims], "given")
        return self.extractor.extract(item.text or "", prompt=item.prompt)

    def _within_limit(self, claims: Sequence[Claim]) -> None:
        if len(claims) > self.max_claims:
            raise BadRequestError(
                f"the text holds {len(claims)} claims; the limit is {self.max_claims}",
                "too_many_claims",
            )

    def _verdicts(
        self, checkable: Sequence[Claim], snapshot: Snapshot, top_k: int | None
    ) -> list[Verdict]:
        """Retrieve evidence for each claim and verify it (one batch of each).

        A claim's verdict depends on its text, the corpus version, ``top_k`` and the
        verifier alone, so the last ``verdict_memo`` verdicts are remembered by those
        (before calibration, which is applied afterwards): a claim met again costs nothing.
        """
        k = top_k or self.top_k
        manifest = snapshot.manifest  # its build time tells a corpus made again by the same name
        version = "\x1f".join(
            [manifest.corpus, str(manifest.version), manifest.created_at, self.verifier.version]
        )
        keys = [f"{version}\x1f{k}\x1f{c.text}" for c in checkable]
        known = self._verdict_memo.recall(keys)
        todo: dict[str, Claim] = {}
        for key, claim in zip(keys, checkable, strict=True):
            if key not in known:
                todo.setdefault(key, claim)
        if todo:
            found = self._retrieve_and_verify(list(todo.values()), snapshot, k)
            fresh = dict(zip(todo, found, strict=True))
            self._verdict_memo.remember(fresh)
            known.update(fresh)
        return [known[key] for key in keys]

    def forget(self) -> None:
        """Drop the remembered verdicts."""
        self._verdict_memo.clear()

    def _retrieve_and_verify(
        self, checkable: Sequence[Claim], snapshot: Snapshot, k: int
    ) -> list[Verdict]:
        texts = [c.text for c in checkable]
        if isinstance(self.verifier, Preparing):
            self.verifier.prepare(texts)  # spaCy reads the claims while MiniLM encodes them
        with timing.stage("embedding"):
            vectors = self.embedder.encode(texts)
        with timing.stage("search"):
            hits = snapshot.search(vectors, texts, k, self.mode, self.fusion, self.rerank)
        with timing.stage("verification"):
            return self.verifier.verify(checkable, [[as_passage(h) for h in row] for row in hits])

    def _judge(
        self,
        kind: str,
        claims: list[Claim],
        text: str | None,
        prompt: str | None,
        name: str,
        snapshot: Snapshot,
        top_k: int | None,
        extractor: str | None,
        db: Session | None,
    ) -> CheckResult:
        self._within_limit(claims)
        verdicts = self._verdicts([c for c in claims if c.checkworthy], snapshot, top_k)
        return self._result(kind, claims, verdicts, text, prompt, name, snapshot, extractor, db)

    def _result(
        self,
        kind: str,
        claims: Sequence[Claim],
        verdicts: Sequence[Verdict],
        text: str | None,
        prompt: str | None,
        name: str,
        snapshot: Snapshot,
        extractor: str | None,
        db: Session | None,
    ) -> CheckResult:
        """The check: each claim with its verdict (the checkworthy ones, in order),
        calibrated, flagged and summarised."""
        given = iter(verdicts)
        with timing.stage("aggregation"):
            found = self.calibrations(name, db) if self.calibrations else None
            results, raw_scores = [], []
            for claim in claims:
                verdict = next(given) if claim.checkworthy else None
                raw_scores.append({str(k): v for k, v in verdict.scores.items()} if verdict else {})
                if verdict is not None and found is not None:
                    verdict = calibrated(verdict, found[1])
                flagged = is_flagged(verdict, self.review_threshold)
                results.append(ClaimResult(claim, verdict, flagged))
            summary = summarise(results)
        claim_ids = [new_id("clm") for _ in results]
        return CheckResult(
            id=new_id("chk"),
            kind=kind,
            text=text,
            prompt=prompt,
            corpus=name,
            corpus_version=snapshot.version,
            extractor=extractor,
            verifier=self.verifier.name,
            verifier_version=self.verifier.version,
            results=results,
            claim_ids=claim_ids,
            summary=summary,
            raw_scores=raw_scores,
            calibration_id=found[0] if found else None,
            reviews_needed=[
                2 if second_review(i, self.double_review_share) else 1 for i in claim_ids
            ],
        )


@dataclass(frozen=True)
class Ranking:
    """Responses to one prompt, checked and ranked (``claims.aggregation.rank``)."""

    prompt: str
    responses: list[str]
    results: list[CheckResult]  # in the order given
    ranked: list[Standing]  # most factual first
    pairs: list[tuple[Standing, Standing, float]]  # (chosen, rejected, margin)


@dataclass(frozen=True)
class Screened:
    """One item of a bulk screen: a response to split (``text``), or ``claims`` as given."""

    id: str | int
    text: str | None = None
    claims: tuple[str, ...] | None = None
    prompt: str | None = None
    corpus: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _given(text: str) -> Claim:
    """A claim taken as it is given (its span: the text without surrounding spaces)."""
    return Claim(text.strip(), text, (Span(len(text) - len(text.lstrip()), len(text.rstrip())),))
