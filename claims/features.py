"""Aligning a claim to its evidence sentences, and what the alignment shows.

For every claim the evidence passages are split into sentences (each read with
its passage title), ranked by MiniLM cosine, and the best few are compared with
the claim in detail: word-piece coverage from contextual token vectors (a
BERTScore-like recall of the claim's content), lexical coverage of content
lemmas, typed agreement and disagreement of numbers, dates and named entities,
negation, quantifier and superlative cues, WordNet antonyms, and what
``claims.contrast`` finds turned round between the claim and each sentence.
The result is a fixed-length feature vector for a learned head, and the typed
findings (with spans on both sides) that explain a verdict.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from claims import contrast
from claims.contrast import CODES, Comparer, Finding
from claims.nlp import NLP_LOCK
from claims.timing import stage
from claims.types import Passage, Reason, Span
from retrieval.embedders import Memo
from retrieval.text import split_sentences, titled

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

    from retrieval.embedders import TokenVectors


class TokenEncoder(Protocol):
    """Sentence vectors, and word pieces with contextual vectors, batch first."""

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]: ...


FEATURES: tuple[str, ...] = (
    "cos_max",
    "cos_second",
    "cos_mean_top",
    "cos_gap",
    "piece_recall",
    "piece_recall_best",
    "piece_min",
    "piece_precision_best",
    "lex_cov_best",
    "lex_cov_all",
    "n_uncovered",
    "n_uncovered_propn",
    "n_claim_content",
    "title_in_claim",
    "n_numbers",
    "number_match",
    "number_mismatch",
    "n_dates",
    "date_match",
    "date_mismatch",
    "n_entities",
    "entity_found",
    "entity_missing",
    "entity_mismatch",
    "neg_claim",
    "neg_evidence",
    "neg_xor",
    "cue_claim",
    "cue_unmatched",
    "opposite",
    "claim_tokens",
    "evidence_tokens_best",
    # claims.contrast, over the top sentences: 2 for a strong finding, 1 for a weak one
    *(f"ct_{code}" for code in CODES),
    "ct_subject",
    "ct_coverage",
    "ct_supports",
)

TOP_SENTENCES = 3  # sentences compared in detail with each claim
CONTRAST_SENTENCES = 5  # sentences the claim is read against word by word (claims.contrast)
_NOT_NEEDED = ["parser"]
# One thread that parses evidence while the caller's thread runs MiniLM.
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="claimsieve-parse")
_CONTENT_POS = frozenset({"NOUN", "PROPN", "VERB", "ADJ", "NUM", "ADV"})
ENTITY_TYPES = frozenset(
    {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "WORK_OF_ART", "LANGUAGE", "PRODUCT"}
)
NEGATIONS = frozenset(
    {"not", "n't", "never", "no", "none", "nobody", "nothing", "neither", "nor", "without"}
)
_CUES = frozenset(
    "only first last largest biggest smallest highest lowest most least never always all every "
    "sole solely exclusively entire whole more less fewer earliest latest oldest youngest".split()
)
_NUMBER = re.compile(
    r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?:\s*(million|billion|trillion|thousand|%|percent))?(?![\w])",
    re.IGNORECASE,
)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
_PIECE_WORD = re.compile(r"^[a-z0-9]+$")


@dataclass(frozen=True)
class Mention:
    """A number or a date in a text."""

    kind: str  # "number" or "date"
    value: float | str
    digits: int  # significant digits as written (for rounding)
    span: Span


def mentions(text: str) -> list[Mention]:
    """Numbers (with thousand/million/billion scales) and dates (years, months) in ``text``."""
    found: list[Mention] = []
    for match in _NUMBER.finditer(text):
        raw = match.group(1).rstrip(",")
        plain = raw.replace(",", "")
        try:
            value = float(plain)
        except ValueError:
            continue
        scale = (match.group(2) or "").lower()
        end = match.end() if scale else match.start(1) + len(raw)
        if not scale and "." not in plain and len(plain) == 4 and 1000 <= value <= 2100:
            found.append(Mention("date", plain, 4, Span(match.start(1), end)))
            continue
        # Significant digits as written: "3.2 million" has two, "300" three (read as exact).
        digits = len(plain.replace(".", "").lstrip("0") or "0")
        if scale and "." in plain:
            digits = len(plain.replace(".", "").lstrip("0").rstrip("0") or "0")
        found.append(
            Mention(
                "number", value * _SCALE.get(scale, 1.0), max(digits, 1), Span(match.start(1), end)
            )
        )
    for match in _MONTH.finditer(text):
        found.append(Mention("date", match.group(0).lower(), 0, Span(match.start(), match.end())))
    return found


def same_value(claim: Mention, evidence: Mention) -> bool:
    """Equal, or equal once the evidence is rounded to the claim's precision."""
    if claim.kind != evidence.kind:
        return False
    if isinstance(claim.value, str) or isinstance(evidence.value, str):
        return claim.value == evidence.value
    a, b = claim.value, evidence.value
    if math.isclose(a, b, rel_tol=1e-6):
        return True
    if a == 0 or b == 0:
        return False
    # "3.2 million" against 3,213,000: round the evidence to the claim's significant digits.
    magnitude = math.floor(math.log10(abs(a)))
    step = 10 ** (magnitude - claim.digits + 1)
    return math.isclose(round(b / step) * step, a, rel_tol=1e-6)


@dataclass(frozen=True)
class AlignedSentence:
    """One evidence sentence and its cosine with the claim."""

    passage: Passage
    span: Span
    similarity: float

    @property
    def text(self) -> str:
        return self.span.slice(self.passage.text)


@dataclass
class ClaimFeatures:
    """Everything the alignment found for one claim.

    Attributes:
        sentences: All evidence sentences, most similar first.
        vector: Feature values in the order of ``FEATURES``.
        findings: Typed disagreements with spans on both sides (``claims.contrast.CODES``).
        uncovered: Claim content words found in no aligned sentence, as reasons.
        refutes: A strong finding against a top sentence that speaks of the claim's
            subject, when no top sentence states the claim: it decides the verdict.
    """

    sentences: list[AlignedSentence]
    vector: NDArray[np.float32]
    findings: list[Reason] = field(default_factory=list)
    uncovered: list[Reason] = field(default_factory=list)
    refutes: Reason | None = None


def _split(passage: Passage) -> list[Span]:
    if passage.sentences:
        return list(passage.sentences)
    return [Span(s, e) for s, e in split_sentences(passage.text)] or [Span(0, len(passage.text))]


def unencoded_sentences(evidence: Sequence[Sequence[Passage]]) -> list[str]:
    """Titled texts of the evidence sentences that came without vectors from the index."""
    return list(
        dict.fromkeys(
            titled(p.title, span.slice(p.text))
            for passages in evidence
            for p in passages
            if p.sentence_vectors is None or len(p.sentence_vectors) != len(_split(p))
            for span in _split(p)
        )
    )


def rank_sentences(
    claims: Sequence[str],
    evidence: Sequence[Sequence[Passage]],
    vectors: Mapping[str, NDArray[np.float32]],
) -> list[list[AlignedSentence]]:
    """Every evidence sentence of each claim, most similar first (headings last).

    A heading or a signature line ("Mutable Sequence Types", "next(iterator[,
    default])") is often the most similar "sentence" of a passage and states
    nothing; it goes after the sentences. ``vectors`` holds the claims' vectors
    and those of ``unencoded_sentences``; the other sentences bring theirs from
    the index.
    """
    aligned: list[list[AlignedSentence]] = []
    for claim, passages in zip(claims, evidence, strict=True):
        query = vectors[claim]
        sentences: list[AlignedSentence] = []
        for passage in passages:
            spans = _split(passage)
            given = passage.sentence_vectors
            if given is not None and len(given) == len(spans):
                sims = np.asarray(given) @ query
            else:
                sims = np.array(
                    [vectors[titled(passage.title, sp.slice(passage.text))] @ query for sp in spans]
                )
            sentences += [
                AlignedSentence(passage, sp, float(v)) for sp, v in zip(spans, sims, strict=True)
            ]
        aligned.append(sorted(sentences, key=lambda s: (_heading(s.text), -s.similarity)))
    return aligned


def _heading(text: str) -> bool:
    """A short line without a full stop, or a signature (``f(x) -> y``)."""
    line = text.strip()
    if line.endswith((".", "!", "?", ":", '."', ".'")):
        return False
    return len(line.split()) <= 6 or "->" in line


def _rescored(
    claim: str, sentences: list[AlignedSentence], tokens: Mapping[str, TokenVectors]
) -> list[AlignedSentence]:
    """The top sentences' cosines taken from their own forward pass, and re-sorted.

    An index may hand in sentence vectors read inside their passage; they rank
    well, but the features (and the heads trained on them) use each sentence
    read alone, which the word-piece pass has just computed.
    """
    query = tokens[claim].sentence
    top = [
        replace(s, similarity=float(tokens[titled(s.passage.title, s.text)].sentence @ query))
        for s in sentences[:TOP_SENTENCES]
    ]
    return sorted(top, key=lambda s: -s.similarity) + sentences[TOP_SENTENCES:]


def _content_pieces(pieces: Sequence[str], stop: frozenset[str]) -> list[int]:
    """Indexes of word pieces that belong to content words (not stop words or punctuation)."""
    keep: list[int] = []
    head_is_content = False
    for i, piece in enumerate(pieces):
        if piece.startswith("##"):
            if head_is_content:
                keep.append(i)
            continue
        head_is_content = bool(_PIECE_WORD.match(piece)) and piece not in stop
        if head_is_content:
            keep.append(i)
    return keep


def _is_content(token: object) -> bool:
    return bool(
        token.pos_ in _CONTENT_POS  # type: ignore[attr-defined]
        and not token.is_stop  # type: ignore[attr-defined]
        and not token.is_punct  # type: ignore[attr-defined]
        and token.text.strip()  # type: ignore[attr-defined]
    )


def _negated(doc: Doc) -> bool:
    return any(token.lower_ in NEGATIONS for token in doc)


class FeatureExtractor:
    """Computes ``ClaimFeatures`` for claims and their evidence passages, batch first.

    What an evidence sentence brings (its word pieces, its parse) depends on the
    sentence alone, and the same passages come back check after check: those
    of the last ``evidence_memo`` sentences are remembered, least recently used
    out first.

    Args:
        encoder: MiniLM (sentence vectors and token vectors).
        nlp: spaCy pipeline with tagger, lemmatizer and NER (the parser is not used).
        evidence_memo: Evidence sentences whose word pieces and parse are remembered
            (about 50 kB each).
    """

    def __init__(self, encoder: TokenEncoder, nlp: Language, evidence_memo: int = 2048) -> None:
        from spacy.lang.en.stop_words import STOP_WORDS

        self._encoder = encoder
        self._nlp = nlp
        self._stop = frozenset(STOP_WORDS)
        self._comparer = Comparer()
        self._pieces: Memo[TokenVectors] = Memo(evidence_memo)
        self._parses: Memo[Doc] = Memo(evidence_memo)
        self._claim_parses: Memo[Doc] = Memo(1024)

    def prepare(self, claims: Sequence[str]) -> None:
        """Start parsing ``claims`` on the parser thread, while the caller retrieves evidence
        for them; :meth:`extract` takes the parses from there."""
        unique = list(dict.fromkeys(claims))

        def parse() -> None:
            with NLP_LOCK:
                docs = dict(zip(unique, self._nlp.pipe(unique), strict=True))
            self._claim_parses.remember(docs)

        _PARSER.submit(parse)

    def forget(self) -> None:
        """Drop the remembered evidence sentences (and claims)."""
        self._pieces.clear()
        self._parses.clear()
        self._claim_parses.clear()

    def extract(
        self, claims: Sequence[str], evidence: Sequence[Sequence[Passage]]
    ) -> list[ClaimFeatures]:
        if len(claims) != len(evidence):
            raise ValueError("one evidence list is needed per claim")
        if not claims:
            return []
        tokens: dict[str, TokenVectors] = {}
        aligned = self._align(claims, evidence, tokens)
        top = [sentences[:TOP_SENTENCES] for sentences in aligned]
        read = [_compared(sentences) for sentences in aligned]
        titles = {s.passage.title for per_claim in top for s in per_claim}
        # Contexts of the top sentences too: rescoring may reorder them, and of two with
        # the same text under different headings the word-by-word reading takes the first.
        titles |= {_context(s) for per_claim in (*read, *top) for s in per_claim}
        texts = list(dict.fromkeys([*(s.text for per_claim in read for s in per_claim), *titles]))
        unique = list(dict.fromkeys(claims))

        def parse() -> dict[str, Doc]:
            docs = self._parses.recall(texts)
            new = [t for t in texts if t not in docs]
            # Claims are parsed too (all of the pipeline): the contrast reads their subject.
            # Those given to prepare() were parsed before this job (one parser thread).
            claim_docs = self._claim_parses.recall(unique)
            unparsed = [t for t in unique if t not in claim_docs]
            with NLP_LOCK:
                parsed = dict(zip(new, self._nlp.pipe(new, disable=_NOT_NEEDED), strict=True))
                claim_docs.update(zip(unparsed, self._nlp.pipe(unparsed), strict=True))
            self._parses.remember(parsed)
            return {**docs, **parsed, **claim_docs}

        # spaCy and MiniLM each leave a core idle much of the time: they run side by side.
        parsing = _PARSER.submit(parse)
        # Claims and sentences whose word pieces are not known yet, in one batch.
        sentences = [titled(s.passage.title, s.text) for per_claim in top for s in per_claim]
        tokens.update(self._pieces.recall([t for t in sentences if t not in tokens]))
        wanted = [key for key in dict.fromkeys([*claims, *sentences]) if key not in tokens]
        try:
            with stage("verification.word_pieces"):
                found = dict(zip(wanted, self._encoder.encode_tokens(wanted), strict=True))
                tokens.update(found)
                self._pieces.remember({t: found[t] for t in sentences if t in found})
        finally:
            with stage("verification.parse_wait"):  # what spaCy took beyond MiniLM
                docs = parsing.result()
        return [
            self._features(claim, _rescored(claim, sentences, tokens), docs, tokens)
            for claim, sentences in zip(claims, aligned, strict=True)
        ]

    def _align(
        self,
        claims: Sequence[str],
        evidence: Sequence[Sequence[Passage]],
        tokens: dict[str, TokenVectors],
    ) -> list[list[AlignedSentence]]:
        """Rank every evidence sentence by cosine; fills ``tokens`` for the texts it encodes."""
        # Sentences that came without vectors from the index are read alone here.
        missing = unencoded_sentences(evidence)
        tokens.update(self._pieces.recall(missing))
        missing = [t for t in missing if t not in tokens]
        unique = list(dict.fromkeys(claims))
        if missing:
            # One forward pass gives the vectors and the word pieces of claims and sentences.
            texts = list(dict.fromkeys([*unique, *missing]))
            tokens.update(zip(texts, self._encoder.encode_tokens(texts), strict=True))
            self._pieces.remember({t: tokens[t] for t in missing})
            vectors = {t: tokens[t].sentence for t in texts}
        else:
            # The claims' vectors were just used to retrieve the evidence (a memo hands them
            # back); their word pieces come later in one batch.
            vectors = dict(zip(unique, self._encoder.encode(unique), strict=True))
        vectors.update((t, found.sentence) for t, found in tokens.items() if t not in vectors)
        return rank_sentences(claims, evidence, vectors)

    def _features(
        self,
        claim: str,
        sentences: list[AlignedSentence],
        docs: dict[str, Doc],
        tokens: dict[str, TokenVectors],
    ) -> ClaimFeatures:
        values = dict.fromkeys(FEATURES, 0.0)
        claim_doc = docs[claim]
        content = [t for t in claim_doc if _is_content(t)]
        values["n_claim_content"] = len(content)
        values["claim_tokens"] = len(claim_doc)
        values["neg_claim"] = float(_negated(claim_doc))
        claim_mentions = mentions(claim)
        values["n_numbers"] = sum(m.kind == "number" for m in claim_mentions)
        values["n_dates"] = sum(m.kind == "date" for m in claim_mentions)
        claim_entities = [e for e in claim_doc.ents if e.label_ in ENTITY_TYPES]
        values["n_entities"] = len(claim_entities)
        cues = [t for t in claim_doc if t.lower_ in _CUES or t.tag_ in ("JJS", "RBS")]
        values["cue_claim"] = len(cues)
        if not sentences:
            values["lex_cov_best"] = values["lex_cov_all"] = 0.0
            values["n_uncovered"] = len(content)
            return ClaimFeatures([], np.array([values[f] for f in FEATURES], dtype=np.float32))

        top = sentences[:TOP_SENTENCES]
        sims = [s.similarity for s in sentences]
        values["cos_max"] = sims[0]
        values["cos_second"] = sims[1] if len(sims) > 1 else 0.0
        values["cos_mean_top"] = float(np.mean(sims[:TOP_SENTENCES]))
        values["cos_gap"] = sims[0] - values["cos_second"]

        # Word-piece coverage: each content piece of the claim against all pieces of the top
        # sentences (and against the best one alone).
        claim_tokens = tokens[claim]
        keep = _content_pieces(claim_tokens.pieces, self._stop)
        evidence_tokens = [tokens[titled(s.passage.title, s.text)] for s in top]
        if keep:
            mine = claim_tokens.vectors[keep]
            best_matrix = mine @ evidence_tokens[0].vectors.T
            all_matrix = mine @ np.concatenate([t.vectors for t in evidence_tokens]).T
            per_piece = all_matrix.max(axis=1)
            values["piece_recall"] = float(per_piece.mean())
            values["piece_min"] = float(per_piece.min())
            values["piece_recall_best"] = float(best_matrix.max(axis=1).mean())
            best_keep = _content_pieces(evidence_tokens[0].pieces, self._stop)
            if best_keep:
                values["piece_precision_best"] = float(best_matrix[:, best_keep].max(axis=0).mean())

        # Lexical coverage of content lemmas, titles included.
        top_docs = [docs[s.text] for s in top]
        title_docs = [docs[s.passage.title] for s in top]

        def words(ds: Sequence[Doc]) -> set[str]:
            return {t.lemma_.lower() for d in ds for t in d} | {t.lower_ for d in ds for t in d}

        best_words = words([top_docs[0], title_docs[0]])
        all_words = words(top_docs + title_docs)
        if content:
            values["lex_cov_best"] = sum(
                t.lemma_.lower() in best_words or t.lower_ in best_words for t in content
            ) / len(content)
            covered = [t.lemma_.lower() in all_words or t.lower_ in all_words for t in content]
            values["lex_cov_all"] = sum(covered) / len(content)
            missing = [t for t, ok in zip(content, covered, strict=True) if not ok]
            values["n_uncovered"] = len(missing)
            values["n_uncovered_propn"] = sum(t.pos_ == "PROPN" for t in missing)
        else:
            missing = []
        title_words = [t for t in title_docs[0] if not t.is_punct and not t.is_stop]
        claim_lower = claim.lower()
        if title_words:
            values["title_in_claim"] = sum(t.lower_ in claim_lower for t in title_words) / len(
                title_words
            )
        values["evidence_tokens_best"] = len(top_docs[0])

        findings: list[Reason] = []

        def reason(
            code: str, message: str, claim_span: Span, s: AlignedSentence, local: Span
        ) -> Reason:
            return Reason(
                code,
                message,
                claim_text=claim_span.slice(claim),
                claim_span=claim_span,
                evidence_text=local.slice(s.text),
                evidence_span=Span(s.span.start + local.start, s.span.start + local.end),
                passage_id=s.passage.passage_id,
            )

        found = [(s, m) for s in top for m in mentions(s.text)]
        for mention in claim_mentions:
            same_kind = [(s, m) for s, m in found if m.kind == mention.kind]
            if not same_kind:
                continue
            if any(same_value(mention, m) for _, m in same_kind):
                values[f"{mention.kind}_match"] += 1
            else:
                values[f"{mention.kind}_mismatch"] += 1
                s, other = same_kind[0]
                findings.append(
                    reason(
                        f"{mention.kind}_mismatch",
                        f"the claim says {mention.span.slice(claim)}; "
                        f"the evidence says {other.span.slice(s.text)}",
                        mention.span,
                        s,
                        other.span,
                    )
                )

        context = " ".join(f"{s.passage.title} {s.text}" for s in top).lower()
        rivals = [
            (s, e)
            for s, d in zip(top, top_docs, strict=True)
            for e in d.ents
            if e.label_ in ENTITY_TYPES and e.text.lower() not in claim_lower
        ]
        for entity in claim_entities:
            words_in = [t.lower_ for t in entity if not t.is_punct and not t.is_stop]
            if entity.text.lower() in context or (
                words_in and all(w in all_words for w in words_in)
            ):
                values["entity_found"] += 1
                continue
            values["entity_missing"] += 1
            rival = next(((s, e) for s, e in rivals if e.label_ == entity.label_), None)
            if rival is not None:
                values["entity_mismatch"] += 1
                s, other_entity = rival
                findings.append(
                    reason(
                        "entity_mismatch",
                        f"the claim names {entity.text}; the evidence names {other_entity.text}",
                        Span(entity.start_char, entity.end_char),
                        s,
                        Span(other_entity.start_char, other_entity.end_char),
                    )
                )

        best_doc = top_docs[0]
        values["neg_evidence"] = float(_negated(best_doc))
        values["neg_xor"] = float(values["neg_claim"] != values["neg_evidence"])
        values["cue_unmatched"] = sum(
            cue.lemma_.lower() not in all_words and cue.lower_ not in all_words for cue in cues
        )
        claim_words = [w for w in contrast.words(claim_doc) if w.content]
        values["opposite"] = sum(
            any(contrast.opposite(c, e) for d in top_docs for e in contrast.words(d) if e.content)
            for c in claim_words
            if c.key not in all_words
        )
        read = _compared(sentences)
        comparisons = [
            self._comparer.compare(
                claim_doc,
                docs[s.text],
                docs[_context(s)],
                f"{s.passage.title} {s.passage.text}".lower(),
            )
            for s in read
        ]
        # A sentence that states the claim whole outweighs what other sentences, about
        # other things, say differently ("lstrip" stated; "rstrip ... trailing" beside it).
        stated = any(c.supports for c in comparisons)
        for code in CODES:
            values[f"ct_{code}"] = max(
                (
                    2.0 if f.strong else 1.0
                    for c in comparisons
                    for f in c.findings
                    if f.code == code and not stated
                ),
                default=0.0,
            )
        values["ct_subject"] = float(comparisons[0].subject)
        values["ct_coverage"] = max(c.coverage for c in comparisons)
        values["ct_supports"] = float(any(c.supports for c in comparisons))
        typed = [(s, f) for s, c in zip(read, comparisons, strict=True) for f in c.findings]
        turned = [_reason(claim, s, f) for s, f in typed]
        codes = {r.code for r in turned}
        # The value and name checks over all top sentences find what a clause-level
        # comparison can miss; they are kept where it found nothing of their kind.
        findings = turned + [r for r in findings if r.code not in codes]
        refutes = None
        match = contrast.matching(comparisons)
        # A question with its answer ("Who wrote X? Y") is not a statement to turn round.
        declarative = "?" not in claim
        if declarative and comparisons[match].strong and not any(c.supports for c in comparisons):
            refutes = _reason(claim, read[match], comparisons[match].strong[0])
        uncovered = [
            Reason(
                "unsupported_content",
                f"no evidence sentence mentions '{t.text}'",
                claim_text=t.text,
                claim_span=Span(t.idx, t.idx + len(t)),
            )
            for t in missing
        ]
        vector = np.array([values[f] for f in FEATURES], dtype=np.float32)
        return ClaimFeatures(sentences, vector, findings, uncovered, refutes)


def _compared(sentences: Sequence[AlignedSentence]) -> list[AlignedSentence]:
    """The best sentences the claim is read against word by word, each text once.

    Overlapping passages repeat a sentence.
    """
    first = {s.text: s for s in reversed(sentences)}
    return [s for s in sentences if first[s.text] is s][:CONTRAST_SENTENCES]


def _context(sentence: AlignedSentence) -> str:
    """What a sentence speaks of: its passage's title and the heading above it, if any."""
    spans = _split(sentence.passage)
    above = [sp for sp in spans if sp.end <= sentence.span.start]
    heading = next(
        (sp for sp in reversed(above) if _heading(sp.slice(sentence.passage.text))), None
    )
    if heading is None:
        return sentence.passage.title
    return f"{sentence.passage.title} {heading.slice(sentence.passage.text).strip()}"


def _reason(claim: str, sentence: AlignedSentence, finding: Finding) -> Reason:
    """A contrast finding as a reason, its evidence span moved into the passage."""
    local = finding.evidence
    return Reason(
        finding.code,
        finding.message,
        claim_text=finding.claim.slice(claim) if finding.claim else None,
        claim_span=finding.claim,
        evidence_text=local.slice(sentence.text) if local else None,
        evidence_span=Span(sentence.span.start + local.start, sentence.span.start + local.end)
        if local
        else None,
        passage_id=sentence.passage.passage_id,
    )
