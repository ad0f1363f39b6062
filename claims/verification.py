"""Deciding a verdict for each claim from its evidence passages.

Every backend implements ``Verifier.verify(claims, evidence) -> verdicts``,
batch first. ``FeaturesVerifier`` (the default) feeds the alignment features
of ``claims.features`` to a learned head (``claims.head``).
A strong typed contradiction (``claims.contrast``) against a sentence that
speaks of the claim's subject decides a ``FeaturesVerifier`` verdict by itself:
the claim is REFUTED, with the confidence measured for that kind of finding
on held-out rows (the head folder's ``gate.json``), whatever the mixed heads
say. ``SimilarityRulesVerifier`` (the first release's baseline) aligns each claim
to its most similar evidence sentences and applies typed mismatch rules with
hand-set thresholds. ``claims.nli`` and ``claims.llm`` hold the other backends.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from claims.cross import CrossHead, Pair, combine, evidence_text
from claims.features import (
    ENTITY_TYPES,
    NEGATIONS,
    AlignedSentence,
    ClaimFeatures,
    FeatureExtractor,
    mentions,
    rank_sentences,
    same_value,
    unencoded_sentences,
)
from claims.head import Head
from claims.nlp import NLP_LOCK
from claims.timing import stage
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


@runtime_checkable
class Preparing(Protocol):
    """A verifier that can start on claims before their evidence is retrieved."""

    def prepare(self, claims: Sequence[str]) -> None: ...


_NOT_NEEDED = ["tagger", "parser", "attribute_ruler", "lemmatizer"]
GATE_FILE = "gate.json"
# The confidence of a gated REFUTED when its head folder measured none.
GATE_DEFAULT = 0.75


def load_gate(folder: Path) -> dict[str, float] | None:
    """The kinds of strong finding that decide, with how often each was right (``gate.json``).

    Measured on held-out rows; a kind right less than half the time does not
    decide. ``None`` when the folder has no such file: then every kind decides,
    at :data:`GATE_DEFAULT`.
    """
    path = folder / GATE_FILE
    if not path.is_file():
        return None
    card = json.loads(path.read_text())
    return {
        code: float(row["precision"])
        for code, row in card.get("codes", {}).items()
        if row.get("gated", True)
    }


_STANCE = {
    Label.SUPPORTED: Stance.SUPPORTS,
    Label.REFUTED: Stance.REFUTES,
    Label.NOT_ENOUGH_INFO: Stance.NEUTRAL,
}


def _negated(doc: Doc) -> bool:
    return any(token.lower_ in NEGATIONS for token in doc)


def _softmax(logits: dict[Label, float]) -> dict[Label, float]:
    top = max(logits.values())
    exps = {label: math.exp(value - top) for label, value in logits.items()}
    total = sum(exps.values())
    return {label: exps[label] / total for label in Label if label in exps}


def _judgements(
    deciding: AlignedSentence, sentences: Sequence[AlignedSentence], stance: Stance
) -> tuple[EvidenceJudgement, ...]:
    """One judgement per passage (its best sentence), the deciding one with ``stance``."""
    found: dict[str, EvidenceJudgement] = {}
    for sentence in [deciding, *sentences]:
        pid = sentence.passage.passage_id
        if pid not in found:
            found[pid] = EvidenceJudgement(
                sentence.passage,
                sentence.span,
                stance if sentence is deciding else Stance.NEUTRAL,
                sentence.similarity,
            )
    return tuple(sorted(found.values(), key=lambda j: -j.similarity))


class SimilarityRulesVerifier:
    """Best-sentence similarity plus typed mismatch rules.

    Each claim is compared with every sentence of its passages (a sentence is
    read with its passage title, since Wikipedia-style sentences often say only
    "it"). The few most similar sentences are then checked for typed
    disagreements with the claim.

    Args:
        encoder: Sentence encoder (normalised vectors).
        nlp: spaCy pipeline with NER, for entity and negation checks.
        support_at: Cosine at which SUPPORTED and NOT_ENOUGH_INFO are equally likely.
        related_at: Cosine above which a sentence is about the same thing, so a typed
            disagreement with it is evidence against the claim.
        window: How many of the most similar sentences are checked for disagreements.
    """

    name = "similarity-rules"
    version = "1"

    def __init__(
        self,
        encoder: TextEncoder,
        nlp: Language,
        support_at: float = 0.62,
        related_at: float = 0.55,
        window: int = 3,
    ) -> None:
        self._encoder = encoder
        self._nlp = nlp
        self._support_at = support_at
        self._related_at = related_at
        self._window = window

    def verify(
        self, claims: Sequence[Claim], evidence: Sequence[Sequence[Passage]]
    ) -> list[Verdict]:
        if len(claims) != len(evidence):
            raise ValueError("verify() needs one evidence list per claim")
        if not claims:
            return []
        # Evidence sentences come pre-encoded from the index; any that do not are
        # encoded here, in one batch together with the claims.
        texts = list(dict.fromkeys([*(c.text for c in claims), *unencoded_sentences(evidence)]))
        vectors = dict(zip(texts, self._encoder.encode(texts), strict=True))
        aligned = rank_sentences([c.text for c in claims], evidence, vectors)

        candidates = [
            [s for s in sentences[: self._window] if s.similarity >= self._related_at]
            for sentences in aligned
        ]
        to_parse = [claim.text for claim in claims] + [s.text for c in candidates for s in c]
        with NLP_LOCK:
            # Entities and negation words are all the rules read: skip the parser and tagger.
            docs = iter(list(self._nlp.pipe(to_parse, disable=_NOT_NEEDED)))
        claim_docs = [next(docs) for _ in claims]
        return [
            self._decide(claim, claim_doc, sentences, [(s, next(docs)) for s in related])
            for claim, claim_doc, sentences, related in zip(
                claims, claim_docs, aligned, candidates, strict=True
            )
        ]

    def _decide(
        self,
        claim: Claim,
        claim_doc: Doc,
        sentences: list[AlignedSentence],
        related: list[tuple[AlignedSentence, Doc]],
    ) -> Verdict:
        if not sentences:
            scores = _softmax(
                {Label.SUPPORTED: -3.0, Label.REFUTED: -3.0, Label.NOT_ENOUGH_INFO: 0.0}
            )
            reason = Reason("no_evidence", "retrieval found no passage for this claim")
            return Verdict(
                Label.NOT_ENOUGH_INFO, scores[Label.NOT_ENOUGH_INFO], scores, (reason,), ()
            )
        best = sentences[0]
        similarity = best.similarity
        mismatches = self._mismatches(claim, claim_doc, related) if related else []
        logits = {
            Label.SUPPORTED: 12.0 * (similarity - self._support_at) - 4.0 * len(mismatches),
            Label.REFUTED: 12.0 * (similarity - self._related_at) - (0.0 if mismatches else 6.0),
            Label.NOT_ENOUGH_INFO: 0.0,
        }
        scores = _softmax(logits)
        label = max(scores, key=lambda lab: scores[lab])
        reasons = list(mismatches) if label is not Label.SUPPORTED else []
        deciding = best
        if label is Label.REFUTED and mismatches:
            # The sentence that holds the first disagreement decides.
            first = mismatches[0]
            deciding = next(
                s
                for s, _ in related
                if s.passage.passage_id == first.passage_id
                and first.evidence_span is not None
                and s.span.start <= first.evidence_span.start < s.span.end
            )
        if label is not Label.REFUTED:
            code, message = (
                ("aligned", f"an evidence sentence says much the same ({similarity:.2f} similar)")
                if label is Label.SUPPORTED
                else (
                    "unsupported_content",
                    f"the closest evidence sentence is only {similarity:.2f} similar",
                )
            )
            reasons.append(
                Reason(
                    code,
                    message,
                    evidence_text=best.text,
                    evidence_span=best.span,
                    passage_id=best.passage.passage_id,
                )
            )
        evidence = _judgements(deciding, sentences, _STANCE[label])
        return Verdict(label, scores[label], scores, tuple(reasons), evidence)

    def _mismatches(
        self, claim: Claim, claim_doc: Doc, related: list[tuple[AlignedSentence, Doc]]
    ) -> list[Reason]:
        reasons: list[Reason] = []

        def evidence_reason(
            code: str, message: str, claim_span: Span, sentence: AlignedSentence, local: Span
        ) -> Reason:
            offset = sentence.span.start
            return Reason(
                code,
                message,
                claim_text=claim_span.slice(claim.text),
                claim_span=claim_span,
                evidence_text=local.slice(sentence.text),
                evidence_span=Span(offset + local.start, offset + local.end),
                passage_id=sentence.passage.passage_id,
            )

        found = [(sentence, m) for sentence, _ in related for m in mentions(sentence.text)]
        for mention in mentions(claim.text):
            same_kind = [(s, m) for s, m in found if m.kind == mention.kind]
            if same_kind and not any(same_value(mention, m) for _, m in same_kind):
                sentence, other = same_kind[0]
                reasons.append(
                    evidence_reason(
                        f"{mention.kind}_mismatch",
                        f"the claim says {mention.span.slice(claim.text)}; "
                        f"the evidence says {other.span.slice(sentence.text)}",
                        mention.span,
                        sentence,
                        other.span,
                    )
                )

        context = " ".join(f"{s.passage.title} {s.text}" for s, _ in related).lower()
        rivals = [
            (sentence, entity)
            for sentence, doc in related
            for entity in doc.ents
            if entity.label_ in ENTITY_TYPES and entity.text.lower() not in claim.text.lower()
        ]
        for entity in claim_doc.ents:
            if entity.label_ not in ENTITY_TYPES or entity.text.lower() in context:
                continue
            rival = next(((s, e) for s, e in rivals if e.label_ == entity.label_), None)
            if rival is not None:
                rival_sentence, rival_entity = rival
                reasons.append(
                    evidence_reason(
                        "entity_mismatch",
                        f"the claim names {entity.text}; the evidence names {rival_entity.text}",
                        Span(entity.start_char, entity.end_char),
                        rival_sentence,
                        Span(rival_entity.start_char, rival_entity.end_char),
                    )
                )

        best, best_doc = related[0]
        if _negated(claim_doc) != _negated(best_doc):
            reasons.append(
                evidence_reason(
                    "negation",
                    "one of the claim and the evidence is negated and the other is not",
                    Span(0, len(claim.text)),
                    best,
                    Span(0, len(best.text)),
                )
            )
        return reasons


class FeaturesVerifier:
    """Alignment and mismatch features (``claims.features``) into a learned head.

    The head (``claims.head``) gives three calibrated scores; the verdict's
    reasons are the typed findings of the alignment — number, date, entity,
    negation, quantifier or opposite disagreements for REFUTED, the claim's
    words no evidence sentence mentions for NOT_ENOUGH_INFO — each with spans
    on the claim and on the evidence sentence that decided.

    When the head comes with a cross-encoder head (``claims.cross``), its
    probabilities for the claim read together with its best sentences are mixed
    in (log-linear, with the weight and temperature fitted beside it).

    A strong typed contradiction (``ClaimFeatures.refutes``) makes the verdict
    REFUTED whatever the heads say, with the confidence ``gate`` gives its kind.

    Args:
        extractor: Computes the features.
        head: The trained head (its card's version is this verifier's version).
        cross: The cross-encoder head trained beside it, if any.
        gate: Confidence of a gated REFUTED per kind of finding (see :func:`load_gate`).
    """

    name = "features"

    def __init__(
        self,
        extractor: FeatureExtractor,
        head: Head,
        cross: CrossHead | None = None,
        gate: Mapping[str, float] | None = None,
    ) -> None:
        self._extractor = extractor
        self._head = head
        self._cross = cross
        self._gate = None if gate is None else dict(gate)
        self.version = head.version + (f"+cross/{cross.version}" if cross else "")

    @property
    def head(self) -> Head:
        return self._head

    @property
    def extractor(self) -> FeatureExtractor:
        return self._extractor

    def prepare(self, claims: Sequence[str]) -> None:
        self._extractor.prepare(claims)

    def verify(
        self, claims: Sequence[Claim], evidence: Sequence[Sequence[Passage]]
    ) -> list[Verdict]:
        if len(claims) != len(evidence):
            raise ValueError("verify() needs one evidence list per claim")
        if not claims:
            return []
        with stage("verification.features"):
            found = self._extractor.extract([c.text for c in claims], evidence)
        with stage("verification.feature_head"):
            scores = self._head.scores(np.stack([f.vector for f in found]))
        if self._cross is not None:
            rows = [i for i, f in enumerate(found) if f.sentences]
            pairs = [Pair(claims[i].text, evidence_text(found[i].sentences)) for i in rows]
            with stage("verification.cross_head"):
                found_scores = self._cross.scores(pairs)
            mixed = combine([scores[i] for i in rows], found_scores, *self._cross.mix)
            for i, m in zip(rows, mixed, strict=True):
                scores[i] = m
        return [_verdict(f, s, self._gate) for f, s in zip(found, scores, strict=True)]


def _gated(scores: dict[Label, float], confidence: float) -> dict[Label, float]:
    """REFUTED at least ``confidence``; the other labels share the rest as they did."""
    refuted = max(scores[Label.REFUTED], confidence)
    others = sum(v for label, v in scores.items() if label is not Label.REFUTED)
    out = {
        label: refuted
        if label is Label.REFUTED
        else (1 - refuted) * (v / others if others else 0.5)
        for label, v in scores.items()
    }
    return out


def _verdict(
    found: ClaimFeatures, raw: dict[str, float], gate: Mapping[str, float] | None
) -> Verdict:
    scores = {label: float(raw.get(label.value, 0.0)) for label in Label}
    if not found.sentences:
        no = _softmax({Label.SUPPORTED: -3.0, Label.REFUTED: -3.0, Label.NOT_ENOUGH_INFO: 0.0})
        reason = Reason("no_evidence", "retrieval found no passage for this claim")
        return Verdict(Label.NOT_ENOUGH_INFO, no[Label.NOT_ENOUGH_INFO], no, (reason,), ())
    gating = found.refutes
    if gating is not None and gate is not None and gating.code not in gate:
        gating = None
    if gating is not None:
        scores = _gated(scores, (gate or {}).get(gating.code, GATE_DEFAULT))
    label = max(scores, key=lambda lab: scores[lab])
    best = found.sentences[0]
    deciding = best
    reasons: list[Reason] = []
    if label is Label.REFUTED:
        reasons = [r for r in found.findings if r.code != "unsupported_content"]
        if gating is not None:
            reasons = [gating, *(r for r in reasons if r != gating)]
        located = next((r for r in reasons if r.evidence_span is not None), None)
        if located is not None:
            deciding = next(
                (
                    s
                    for s in found.sentences
                    if s.passage.passage_id == located.passage_id
                    and located.evidence_span is not None
                    and s.span.start <= located.evidence_span.start < s.span.end
                ),
                best,
            )
        if not reasons:
            reasons = [
                Reason(
                    "contradiction",
                    "the closest evidence sentence says something else",
                    evidence_text=best.text,
                    evidence_span=best.span,
                    passage_id=best.passage.passage_id,
                )
            ]
    elif label is Label.NOT_ENOUGH_INFO:
        # Typed disagreements are shown too: the head judged them not enough to refute
        # (the sentence may be about something else), but a trainer should see them.
        reasons = [*found.findings, *found.uncovered[:5]]
        reasons.append(
            Reason(
                "unsupported_content",
                f"the closest evidence sentence ({best.similarity:.2f} similar) does not state it",
                evidence_text=best.text,
                evidence_span=best.span,
                passage_id=best.passage.passage_id,
            )
        )
    else:
        reasons = [
            Reason(
                "aligned",
                f"an evidence sentence states it ({best.similarity:.2f} similar)",
                evidence_text=best.text,
                evidence_span=best.span,
                passage_id=best.passage.passage_id,
            )
        ]
    ordered = _judgements(deciding, found.sentences, _STANCE[label])
    return Verdict(label, scores[label], scores, tuple(reasons), ordered)
