"""Labelled claim/evidence pairs made from any corpus, with no human labels.

From each sampled evidence sentence (its leading pronoun replaced by the
passage title, so it stands alone):

- SUPPORTED: the sentence, or its main part up to the first comma, or the
  sentence without its parentheses;
- REFUTED: the sentence with one named entity swapped for another of the same
  type from elsewhere in the corpus, a number or a year changed, a quantifier
  or superlative turned round, or (in a minority, as in real refutations) a
  negation added;
- NOT_ENOUGH_INFO: the most similar sentence of *another* document (its own
  passage withheld), or the sentence with a detail added that the passage
  does not state (a place or a year taken from another passage).

Every pair's evidence is the source passage plus the passages most similar to
it, as retrieval would hand them over. The mix is fixed so no one kind of
change dominates a label (``verifier-findings.md``: negation-heavy or
copy-only synthetic data teaches artifacts).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from claims.nlp import NLP_LOCK
from claims.types import Passage, Span
from retrieval.text import split_sentences, titled

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

    from claims.features import TokenEncoder

_SWAP_TYPES = ("PERSON", "ORG", "GPE", "LOC", "NORP", "WORK_OF_ART", "EVENT", "FAC", "PRODUCT")
_FLIPS = {
    "first": "last",
    "last": "first",
    "largest": "smallest",
    "smallest": "largest",
    "biggest": "smallest",
    "highest": "lowest",
    "lowest": "highest",
    "oldest": "youngest",
    "youngest": "oldest",
    "earliest": "latest",
    "latest": "earliest",
    "more": "less",
    "less": "more",
    "most": "least",
    "least": "most",
    "before": "after",
    "after": "before",
    "always": "never",
    "never": "always",
    "all": "none of",
    "every": "no",
    "many": "few",
    "few": "many",
}
_PRONOUNS = frozenset({"it", "he", "she", "they", "its", "his", "her", "their"})
_PARENS = re.compile(r"\s*[(\[][^()\[\]]*[)\]]")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20[0-4]\d)\b")
_NUMBER = re.compile(r"(?<![\w.,])(\d+(?:\.\d+)?)(?![\w])")


@dataclass(frozen=True)
class Pair:
    claim: str
    evidence: tuple[Passage, ...]
    label: str
    kind: str  # how it was made, e.g. "entity_swap"


def _subject(title: str) -> str:
    return _PARENS.sub("", title).strip() or title


def _standalone(doc: Doc, title: str) -> str | None:
    """The sentence with a leading pronoun replaced by the title's subject."""
    text = doc.text.strip()
    first = doc[0]
    if first.lower_ in _PRONOUNS:
        name = _subject(title)
        owner = first.lower_ in {"its", "his", "her", "their"}
        text = (f"{name}'s" if owner else name) + text[len(first.text) :]
    elif (
        first.lower_ == "the" and len(doc) > 1 and doc[1].pos_ == "NOUN" and doc[1].i + 1 < len(doc)
    ):
        # "The album was released ..." about the page "Unison (Celine Dion album)".
        if doc[1].lower_ in title.lower():
            text = _subject(title) + text[len(doc[1].text) + doc[1].idx :]
    return text if len(text.split()) >= 5 else None


def _end(text: str) -> str:
    text = text.rstrip(" .")
    return text + "."


class Generator:
    """Makes pairs from passages.

    Args:
        encoder: For finding the most similar sentences and passages.
        nlp: spaCy with tagger, lemmatizer and NER.
        seed: Everything random comes from this seed.
    """

    def __init__(self, encoder: TokenEncoder, nlp: Language, seed: int = 0) -> None:
        self._encoder = encoder
        self._nlp = nlp
        self._rng = random.Random(seed)

    def pairs(
        self,
        passages: Sequence[Passage],
        n: int = 3000,
        context: int = 2,
        progress: Callable[[int], None] | None = None,
    ) -> list[Pair]:
        """About ``n`` pairs (a third per label) from ``passages``.

        Args:
            passages: The corpus (at least two documents).
            n: How many pairs to aim for.
            context: Similar passages added to each pair's evidence.
            progress: Called with the number of sentences prepared so far.
        """
        rng = self._rng
        sentences = [
            (p, Span(s, e))
            for p in passages
            for s, e in split_sentences(p.text)
            if 6 <= len(p.text[s:e].split()) <= 60
        ]
        if len({p.document_id for p in passages}) < 2 or len(sentences) < 10:
            raise ValueError("generating pairs needs at least two documents and ten sentences")
        rng.shuffle(sentences)
        sentences = sentences[: max(10, n // 2)]
        texts = [span.slice(p.text) for p, span in sentences]
        docs: list[Doc] = []
        with NLP_LOCK:
            for i, doc in enumerate(self._nlp.pipe(texts, disable=["parser"], batch_size=64)):
                docs.append(doc)
                if progress and i % 100 == 0:
                    progress(i)
        vectors = self._encoder.encode(
            [titled(p.title, span.slice(p.text)) for p, span in sentences]
        )
        by_id = {p.passage_id: k for k, p in enumerate(passages)}
        passage_vectors = self._passage_vectors(passages, sentences, vectors)
        pool: dict[str, list[str]] = {}
        for doc in docs:
            for ent in doc.ents:
                if ent.label_ in _SWAP_TYPES:
                    pool.setdefault(ent.label_, []).append(ent.text)

        def evidence(source: Passage) -> tuple[Passage, ...]:
            sims = passage_vectors @ passage_vectors[by_id[source.passage_id]]
            order = [int(i) for i in np.argsort(-sims) if passages[int(i)] is not source]
            return (source, *(passages[i] for i in order[:context]))

        out: list[Pair] = []
        for k, ((passage, _), doc) in enumerate(zip(sentences, docs, strict=True)):
            base = _standalone(doc, passage.title)
            if base is None:
                continue
            ev = evidence(passage)
            # SUPPORTED: mostly not a verbatim copy (real supported claims paraphrase and shorten).
            supported = self._supported(base, doc)
            out.append(Pair(supported[1], ev, "SUPPORTED", supported[0]))
            refuted = self._refuted(base, doc, pool)
            if refuted is not None:
                out.append(Pair(refuted[1], ev, "REFUTED", refuted[0]))
            if rng.random() < 0.5:
                sims = vectors @ vectors[k]
                other = next(
                    (
                        int(i)
                        for i in np.argsort(-sims)
                        if sentences[int(i)][0].document_id != passage.document_id
                    ),
                    None,
                )
                if other is not None:
                    neighbour = _standalone(docs[other], sentences[other][0].title)
                    if neighbour is not None:
                        out.append(Pair(neighbour, ev, "NOT_ENOUGH_INFO", "other_document"))
            else:
                added = self._added_detail(base, pool)
                if added is not None:
                    out.append(Pair(added, ev, "NOT_ENOUGH_INFO", "added_detail"))
        rng.shuffle(out)
        return out

    def _passage_vectors(
        self,
        passages: Sequence[Passage],
        sentences: list[tuple[Passage, Span]],
        vectors: np.ndarray,
    ) -> np.ndarray:
        """A passage's vector: the mean of its sampled sentences, or its encoded head."""
        sums: dict[str, list[np.ndarray]] = {}
        for (p, _), v in zip(sentences, vectors, strict=True):
            sums.setdefault(p.passage_id, []).append(v)
        missing = [p for p in passages if p.passage_id not in sums]
        encoded = self._encoder.encode([titled(p.title, p.text[:500]) for p in missing])
        for p, v in zip(missing, encoded, strict=True):
            sums[p.passage_id] = [v]
        out = np.stack([np.mean(sums[p.passage_id], axis=0) for p in passages])
        normalised: np.ndarray = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return normalised

    def _supported(self, base: str, doc: Doc) -> tuple[str, str]:
        rng = self._rng
        roll = rng.random()
        no_parens = _PARENS.sub("", base)
        if roll < 0.35 and no_parens != base:
            return "without_parentheses", _end(no_parens)
        comma = base.find(", ")
        head = base[:comma] if comma > 0 else ""
        if roll < 0.7 and len(head.split()) >= 5:
            return "main_part", _end(head)
        return "copy", _end(base)

    def _refuted(self, base: str, doc: Doc, pool: dict[str, list[str]]) -> tuple[str, str] | None:
        rng = self._rng
        makers = [
            ("entity_swap", 0.4, self._swap_entity),
            ("number_change", 0.3, self._change_number),
            ("quantifier_flip", 0.15, self._flip),
            ("negation", 0.15, self._negate),
        ]
        order = sorted(makers, key=lambda m: -m[1] * rng.random())
        for kind, _, make in order:
            changed = make(base, doc, pool)
            if changed is not None and changed != base:
                return kind, _end(changed)
        return None

    def _swap_entity(self, base: str, doc: Doc, pool: dict[str, list[str]]) -> str | None:
        ents = [e for e in doc.ents if e.label_ in _SWAP_TYPES and e.text in base]
        if not ents:
            return None
        ent = self._rng.choice(ents)
        choices = [t for t in pool.get(ent.label_, []) if t.lower() != ent.text.lower()]
        if not choices:
            return None
        return base.replace(ent.text, self._rng.choice(choices), 1)

    def _change_number(self, base: str, doc: Doc, pool: dict[str, list[str]]) -> str | None:
        rng = self._rng
        year = _YEAR.search(base)
        if year:
            shift = rng.choice([-1, 1]) * rng.randint(1, 25)
            return base[: year.start()] + str(int(year.group()) + shift) + base[year.end() :]
        number = _NUMBER.search(base)
        if not number:
            return None
        value = float(number.group(1))
        new = value * rng.choice([0.5, 0.7, 1.5, 2, 3]) if value > 3 else value + rng.randint(1, 4)
        text = (
            f"{new:.{len(number.group(1).split('.')[1])}f}"
            if "." in number.group(1)
            else str(int(round(new)))
        )
        return base[: number.start()] + text + base[number.end() :]

    def _flip(self, base: str, doc: Doc, pool: dict[str, list[str]]) -> str | None:
        words = [t for t in doc if t.lower_ in _FLIPS]
        if not words:
            return None
        t = self._rng.choice(words)
        start = base.find(t.text)
        if start < 0:
            return None
        return base[:start] + _FLIPS[t.lower_] + base[start + len(t.text) :]

    def _negate(self, base: str, doc: Doc, pool: dict[str, list[str]]) -> str | None:
        for t in doc:
            if t.lower_ in {"is", "was", "are", "were", "has", "had", "can", "will", "could"}:
                start = base.find(f" {t.text} ")
                if start >= 0:
                    end = start + len(t.text) + 1
                    return base[:end] + " not" + base[end:]
            if t.tag_ in {"VBD", "VBZ"} and t.pos_ == "VERB":
                start = base.find(f" {t.text} ")
                if start >= 0:
                    aux = "did" if t.tag_ == "VBD" else "does"
                    return (
                        base[: start + 1]
                        + f"{aux} not {t.lemma_}"
                        + base[start + 1 + len(t.text) :]
                    )
        return None

    def _added_detail(self, base: str, pool: dict[str, list[str]]) -> str | None:
        rng = self._rng
        if rng.random() < 0.5 and pool.get("GPE"):
            detail = f" in {rng.choice(pool['GPE'])}"
        else:
            detail = f" in {rng.randint(1900, 2020)}"
        return base.rstrip(" .") + detail + "."
