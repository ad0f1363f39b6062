"""Deciding a verdict for each claim from its evidence passages.

Every backend implements ``Verifier.verify(claims, evidence) -> verdicts``,
batch first. Version 1 ships ``SimilarityRulesVerifier``: it aligns each claim
to its most similar evidence sentence (MiniLM cosine), then looks for typed
disagreements in that sentence (numbers, dates, named entities, negation).
Its thresholds are set by hand, not fitted to any evaluation set; the learned
``features`` backend replaces it behind the same interface.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from claims.nlp import NLP_LOCK
from claims.text import split_sentences
from claims.types import (
    Claim,
    EvidenceJudgement,
    Label,
    Passage,
    Reason,
    Span,
    Stance,
    Verdict,
)

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc


class TextEncoder(Protocol):
    """Turns texts into L2-normalised vectors (rows), batch first."""

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


class Verifier(Protocol):
    name: str
    version: str

    def verify(
        self, claims: Sequence[Claim], evidence: Sequence[Sequence[Passage]]
    ) -> list[Verdict]:
        """Return one verdict per claim; ``evidence[i]`` are the passages for ``claims[i]``."""
        ...


_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])")
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
_NEGATIONS = frozenset({"not", "n't", "never", "no", "none", "nobody", "nothing", "neither", "nor"})
_ENTITY_TYPES = frozenset(
    {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "WORK_OF_ART", "LANGUAGE", "PRODUCT"}
)


@dataclass(frozen=True)
class _Mention:
    kind: str  # "number" or "date"
    value: str
    span: Span


def _mentions(text: str) -> list[_Mention]:
    found: list[_Mention] = []
    for match in _NUMBER.finditer(text):
        raw = match.group(0).rstrip(",")
        value = raw.replace(",", "")
        is_year = "." not in value and len(value) == 4 and 1000 <= int(value) <= 2100
        span = Span(match.start(), match.start() + len(raw))
        found.append(_Mention("date" if is_year else "number", value, span))
    for match in _MONTH.finditer(text):
        found.append(_Mention("date", match.group(0), Span(match.start(), match.end())))
    return found


def _same_value(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a.lower() == b.lower()
    return math.isclose(x, y, rel_tol=0.005)


def _negated(doc: Doc) -> bool:
    return any(token.dep_ == "neg" or token.lower_ in _NEGATIONS for token in doc)


def _softmax(logits: dict[Label, float]) -> dict[Label, float]:
    top = max(logits.values())
    exps = {label: math.exp(value - top) for label, value in logits.items()}
    total = sum(exps.values())
    return {label: exps[label] / total for label in Label if label in exps}


class SimilarityRulesVerifier:
    """Best-sentence similarity plus typed mismatch rules.

    Args:
        encoder: Sentence encoder (normalised vectors).
        nlp: spaCy pipeline with NER, for entity and negation checks.
        support_at: Cosine at which SUPPORTED and NOT_ENOUGH_INFO are equally likely.
        related_at: Cosine above which a sentence is about the same thing, so a typed
            disagreement with it is evidence against the claim.
    """

    name = "similarity-rules"
    version = "1"

    def __init__(
        self,
        encoder: TextEncoder,
        nlp: Language,
        support_at: float = 0.62,
        related_at: float = 0.55,
    ) -> None:
        self._encoder = encoder
        self._nlp = nlp
        self._support_at = support_at
        self._related_at = related_at

    def verify(
        self, claims: Sequence[Claim], evidence: Sequence[Sequence[Passage]]
    ) -> list[Verdict]:
        if len(claims) != len(evidence):
            raise ValueError("verify() needs one evidence list per claim")
        if not claims:
            return []
        # Every evidence sentence of every passage, encoded once in one batch with the claims.
        sentences: list[list[Span]] = []
        texts: list[str] = [claim.text for claim in claims]
        for passages in evidence:
            for passage in passages:
                spans = split_sentences(passage.text) or [Span(0, len(passage.text))]
                sentences.append(spans)
                texts.extend(span.slice(passage.text) for span in spans)
        vectors = self._encoder.encode(texts)
        claim_vectors, sentence_vectors = vectors[: len(claims)], vectors[len(claims) :]

        aligned: list[list[EvidenceJudgement]] = []
        cursor = 0
        passage_index = 0
        for i, passages in enumerate(evidence):
            judgements = []
            for passage in passages:
                spans = sentences[passage_index]
                passage_index += 1
                sims = sentence_vectors[cursor : cursor + len(spans)] @ claim_vectors[i]
                cursor += len(spans)
                best = int(np.argmax(sims))
                judgements.append(
                    EvidenceJudgement(passage, spans[best], Stance.NEUTRAL, float(sims[best]))
                )
            aligned.append(judgements)

        # Parse each claim and its best-aligned evidence sentence for typed checks.
        best_of = [max(js, key=lambda j: j.similarity) if js else None for js in aligned]
        to_parse = [claim.text for claim in claims]
        to_parse += [j.span.slice(j.passage.text) for j in best_of if j is not None]
        with NLP_LOCK:
            docs = list(self._nlp.pipe(to_parse))
        claim_docs, evidence_docs = iter(docs[: len(claims)]), iter(docs[len(claims) :])

        verdicts = []
        for claim, judgements, best in zip(claims, aligned, best_of, strict=True):
            claim_doc = next(claim_docs)
            if best is None:
                verdicts.append(self._no_evidence())
                continue
            verdicts.append(self._decide(claim, claim_doc, best, next(evidence_docs), judgements))
        return verdicts

    def _no_evidence(self) -> Verdict:
        scores = _softmax({Label.SUPPORTED: -3.0, Label.REFUTED: -3.0, Label.NOT_ENOUGH_INFO: 0.0})
        reason = Reason("no_evidence", "retrieval found no passage for this claim")
        return Verdict(Label.NOT_ENOUGH_INFO, scores[Label.NOT_ENOUGH_INFO], scores, (reason,), ())

    def _decide(
        self,
        claim: Claim,
        claim_doc: Doc,
        best: EvidenceJudgement,
        evidence_doc: Doc,
        judgements: list[EvidenceJudgement],
    ) -> Verdict:
        similarity = best.similarity
        mismatches = (
            self._mismatches(claim, claim_doc, best, evidence_doc)
            if similarity >= self._related_at
            else []
        )
        logits = {
            Label.SUPPORTED: 12.0 * (similarity - self._support_at) - 4.0 * len(mismatches),
            Label.REFUTED: 12.0 * (similarity - self._related_at) - (0.0 if mismatches else 6.0),
            Label.NOT_ENOUGH_INFO: 0.0,
        }
        scores = _softmax(logits)
        label = max(scores, key=lambda lab: scores[lab])
        reasons = list(mismatches)
        if label is Label.NOT_ENOUGH_INFO:
            reasons.append(
                Reason(
                    "unsupported_content",
                    f"the closest evidence sentence is only {similarity:.2f} similar to the claim",
                    evidence_text=best.span.slice(best.passage.text),
                    evidence_span=best.span,
                    passage_id=best.passage.passage_id,
                )
            )
        elif label is Label.SUPPORTED:
            reasons.append(
                Reason(
                    "aligned",
                    f"an evidence sentence says the same ({similarity:.2f} similar)",
                    evidence_text=best.span.slice(best.passage.text),
                    evidence_span=best.span,
                    passage_id=best.passage.passage_id,
                )
            )
        stance = {
            Label.SUPPORTED: Stance.SUPPORTS,
            Label.REFUTED: Stance.REFUTES,
            Label.NOT_ENOUGH_INFO: Stance.NEUTRAL,
        }[label]
        ordered = sorted(judgements, key=lambda j: -j.similarity)
        evidence = tuple(
            EvidenceJudgement(
                j.passage, j.span, stance if j is best else Stance.NEUTRAL, j.similarity
            )
            for j in ordered
        )
        return Verdict(label, scores[label], scores, tuple(reasons), evidence)

    def _mismatches(
        self, claim: Claim, claim_doc: Doc, best: EvidenceJudgement, evidence_doc: Doc
    ) -> list[Reason]:
        passage = best.passage
        offset = best.span.start
        sentence = best.span.slice(passage.text)
        reasons: list[Reason] = []

        evidence_mentions = _mentions(sentence)
        for mention in _mentions(claim.text):
            same_kind = [m for m in evidence_mentions if m.kind == mention.kind]
            if same_kind and not any(_same_value(mention.value, m.value) for m in same_kind):
                other = same_kind[0]
                reasons.append(
                    Reason(
                        f"{mention.kind}_mismatch",
                        f"the claim says {mention.value}; the evidence says {other.value}",
                        claim_text=mention.span.slice(claim.text),
                        claim_span=mention.span,
                        evidence_text=other.span.slice(sentence),
                        evidence_span=Span(offset + other.span.start, offset + other.span.end),
                        passage_id=passage.passage_id,
                    )
                )

        context = f"{passage.title} {sentence}".lower()
        evidence_entities = [e for e in evidence_doc.ents if e.label_ in _ENTITY_TYPES]
        for entity in claim_doc.ents:
            if entity.label_ not in _ENTITY_TYPES or entity.text.lower() in context:
                continue
            rivals = [
                e
                for e in evidence_entities
                if e.label_ == entity.label_ and e.text.lower() not in claim.text.lower()
            ]
            if rivals:
                rival = rivals[0]
                reasons.append(
                    Reason(
                        "entity_mismatch",
                        f"the claim names {entity.text}; the evidence names {rival.text}",
                        claim_text=entity.text,
                        claim_span=Span(entity.start_char, entity.end_char),
                        evidence_text=rival.text,
                        evidence_span=Span(offset + rival.start_char, offset + rival.end_char),
                        passage_id=passage.passage_id,
                    )
                )

        if _negated(claim_doc) != _negated(evidence_doc):
            reasons.append(
                Reason(
                    "negation",
                    "one of the claim and the evidence is negated and the other is not",
                    claim_text=claim.text,
                    claim_span=Span(0, len(claim.text)),
                    evidence_text=sentence,
                    evidence_span=best.span,
                    passage_id=passage.passage_id,
                )
            )
        return reasons
