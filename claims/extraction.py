"""Turning a response into atomic, standalone claims with exact character spans.

``ParseExtractor`` works offline on the spaCy parse: markdown blocks
(:mod:`claims.markdown`), sentences, check-worthiness, decomposition
(:mod:`claims.decomposition`) and decontextualisation (:mod:`claims.context`).
Other extractors (an LLM behind an HTTP API) plug in behind ``Extractor``.

Conventions of a claim's text: the response's own words in their order, with
pronouns and bare descriptions replaced by what they name, an appositive
joined to its noun by "is"/"was", first letter upper-case, one final period.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from claims import context
from claims.contrast import CODE_NAME
from claims.decomposition import Draft, decompose
from claims.errors import EmptyTextError, TextTooLongError
from claims.markdown import Block, BlockKind, blocks
from claims.nlp import NLP_LOCK
from claims.types import Claim, Notice, Span

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc
    from spacy.tokens import Span as SpacySpan

_FILLER = re.compile(
    r"^(hi|hello|hey|thanks|thank you|sure|certainly|of course|absolutely|great question"
    r"|good question|i hope (this|that) helps|hope (this|that) helps|let me know"
    r"|feel free|happy to help|here (is|are)( an?| the)? (answer|summary|overview|list))\b",
    re.IGNORECASE,
)
_OPINION = re.compile(
    r"\b(i think|i believe|i feel|in my opinion|in my view|i would say|personally"
    r"|i guess|i suppose|i love|i like|i prefer)\b",
    re.IGNORECASE,
)
_HEDGE_WORDS = frozenset("might perhaps possibly maybe probably presumably".split())
_HEDGE = re.compile(r"\b(it seems|i'm not sure|i am not sure|it is possible that)\b", re.I)
_EVALUATIVE = frozenset(
    "best greatest worst amazing wonderful terrible awful beautiful fantastic incredible "
    "excellent brilliant boring interesting fascinating impressive delicious ugly lovely "
    "nice awesome overrated underrated stunning".split()
)
_ENGLISH = frozenset(
    "the of and to in is was a for that on with as by it are be at this from his her "
    "he she they an which or were has had not but have their its".split()
)
_WORD = re.compile(r"[^\W\d_]+")


class Extractor(Protocol):
    """Anything that turns a response (and optional prompt) into claims."""

    name: str
    version: str

    def extract(self, text: str, prompt: str | None = None) -> Extraction: ...


@dataclass(frozen=True)
class Extraction:
    """What an extractor made of a response: its claims, and anything the caller should know."""

    claims: list[Claim]
    made_by: str  # "name/version" of the extractor that produced the claims
    notices: tuple[Notice, ...] = ()


def validate_text(text: str, max_chars: int) -> None:
    """Raise a domain error for text that cannot be checked.

    Args:
        text: The response text.
        max_chars: The largest accepted length in characters.
    """
    if not text.strip():
        raise EmptyTextError("text is empty or holds only whitespace")
    if len(text) > max_chars:
        raise TextTooLongError(f"text has {len(text)} characters; the limit is {max_chars}")


def looks_english(text: str) -> bool:
    """Whether ``text`` reads as English: Latin letters and common English function words.

    Short texts (under fifteen words) are given the benefit of the doubt.
    """
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    latin = sum(c.isascii() for c in letters) / len(letters)
    if latin < 0.6:
        return False
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 15:
        return True
    return sum(w in _ENGLISH for w in words) / len(words) >= 0.1


def sentence_reason(sentence: SpacySpan) -> str | None:
    """Why a whole sentence is not worth checking (a stable code), or ``None``."""
    text = sentence.text.strip()
    if text.endswith("?"):
        return "question"
    if _FILLER.match(text):
        return "filler"
    if _OPINION.search(text):
        return "opinion"
    words = [t for t in sentence if not t.is_punct and not t.is_space]
    if not words:
        return "no_statement"
    if not any(t.pos_ in {"VERB", "AUX"} for t in words):
        return "no_statement" if len(words) < 4 else None
    first = words[0]
    # An imperative: the sentence opens with its root verb in base form, and that
    # verb has no subject of its own ("Click the button", "Run the tests").
    if first.tag_ == "VB" and first.dep_ == "ROOT":
        if not any(
            child.dep_ in {"nsubj", "nsubjpass", "expl", "csubj"} for child in first.children
        ):
            return "instruction"
    return None


def claim_reason(doc: Doc, draft: Draft) -> str | None:
    """Why one claim of a checkable sentence is still not worth checking, or ``None``."""
    tokens = [doc[i] for i in sorted(draft.tokens)]
    text = " ".join(t.text for t in tokens)
    if _OPINION.search(text):
        return "opinion"
    if _HEDGE.search(text) or any(
        t.lower_ in _HEDGE_WORDS or (t.tag_ == "MD" and t.lower_ == "may") for t in tokens
    ):
        return "hedged"
    if any(t.lower_ in _EVALUATIVE and t.pos_ == "ADJ" for t in tokens) or any(
        t.tag_ == "MD" and t.lower_ in {"should", "ought"} for t in tokens
    ):
        return "value_judgement"
    return None


_SPACE_BEFORE = re.compile(r"\s+([,.;:!?%)\]}]|'s\b|n't\b)")
_SPACE_AFTER = re.compile(r"([(\[{$])\s+")
_REPEATED = re.compile(r"([,;:])(\s*[,;:])+")
_LEAD = re.compile(r"^(?:[\s,;:.\-–—]|(?:and|but|or|so|then)\b)+", re.IGNORECASE)
_TRAIL = re.compile(r"[\s,;:\-–—.!]+$")


def render(doc: Doc, draft: Draft) -> str:
    """The claim text of ``draft``: its words in order, replacements and insertions applied."""
    pieces: list[tuple[float, str]] = []
    previous: int | None = None
    for key, token_index, inserted in sorted(
        [(float(i), i, None) for i in draft.tokens]
        + [(k, None, s) for k, s in draft.inserts.items()],
        key=lambda piece: piece[0],
    ):
        if token_index is None:
            pieces.append((key, f" {inserted} "))
            previous = None
            continue
        token = doc[token_index]
        word = draft.replace.get(token_index, token.text)
        gap = doc[previous].whitespace_ if previous == token_index - 1 else " "
        pieces.append((key, (gap if pieces else "") + word))
        previous = token_index
    text = " ".join("".join(p for _, p in pieces).split())
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    text = _REPEATED.sub(r"\1", text)
    text = _TRAIL.sub("", _LEAD.sub("", text))
    if not text:
        return ""
    if not CODE_NAME.match(text):  # a name in code keeps its case: "pow(", "str.isdigit"
        text = text[0].upper() + text[1:]
    return text + ("" if text.endswith(("?", '"', "'")) else ".")


_GLUE = frozenset(" \t\r\n,;:-–—'\"()")


def _merge(text: str, spans: Sequence[Span]) -> tuple[Span, ...]:
    """Join spans whose gap is only spaces and light punctuation; keep the rest apart."""
    merged: list[Span] = []
    for span in sorted(spans):
        if merged and all(c in _GLUE for c in text[merged[-1].end : span.start]):
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    # A bracket the claim opens, it closes: "prizes (in 1903 and 1911)".
    for k, span in enumerate(merged):
        inside = span.slice(text)
        if inside.count("(") > inside.count(")") and text[span.end : span.end + 1] == ")":
            merged[k] = Span(span.start, span.end + 1)
    return tuple(merged)


def _pictograph(token: str) -> bool:
    """An emoji (with its modifiers and joiners) or another symbol sign (Unicode So/Sk)."""
    return all(unicodedata.category(c) in ("So", "Sk", "Mn", "Cf") for c in token) and any(
        unicodedata.category(c) == "So" for c in token
    )


def _trim_punct(text: str, span: Span) -> Span:
    start, end = span.start, span.end
    while start < end and not text[start].isalnum() and text[start] not in "\"'($£€[":
        start += 1
    while end > start and not text[end - 1].isalnum() and text[end - 1] not in "\"')%]":
        end -= 1
    return Span(start, end) if end > start else span


class ParseExtractor:
    """Atomic, decontextualised claims from the spaCy dependency parse.

    Args:
        nlp: A loaded spaCy pipeline with tagger, parser and NER.
        max_chars: Longest response accepted.
    """

    name = "parse"
    version = "6"

    def __init__(self, nlp: Language, max_chars: int = 20_000) -> None:
        self._nlp = nlp
        self._max_chars = max_chars

    def extract(self, text: str, prompt: str | None = None) -> Extraction:
        """Split ``text`` into claims; ``prompt`` supplies antecedents ("Tell me about X")."""
        validate_text(text, self._max_chars)
        parts = blocks(text)
        prose = [b for b in parts if b.kind in {BlockKind.PROSE, BlockKind.HEADING}]
        notices: list[Notice] = []
        english = looks_english(" ".join(b.clean for b in prose))
        if not english:
            notices.append(
                Notice(
                    "language",
                    "the text does not read as English: claims are whole sentences, "
                    "not decomposed or decontextualised",
                )
            )
        with NLP_LOCK:
            docs = list(self._nlp.pipe([b.clean for b in prose] + [prompt or ""]))
        prompt_doc = docs.pop()
        memory = context.mentions(prompt_doc, lambda offset: offset - len(prompt_doc.text) - 1.0)
        located = dict(zip((id(b) for b in prose), docs, strict=True))
        for block, doc in zip(prose, docs, strict=True):
            memory.extend(context.mentions(doc, _locator(block)))
        memory.sort(key=lambda m: m.end)

        claims: list[Claim] = []
        header: Block | None = None
        for block in parts:
            if block.kind is BlockKind.CODE:
                claims.append(_whole(text, block.span, "code"))
            elif block.kind is BlockKind.TABLE_HEADER:
                header = block
                claims.append(_whole(text, block.span, "table_header"))
            elif block.kind is BlockKind.TABLE_ROW:
                claims.extend(_table_claims(text, block, header))
            else:
                doc = located[id(block)]
                claims.extend(self._prose_claims(text, block, doc, memory, english))
        if prompt and prompt.strip().endswith("?"):
            claims = [_as_answer(claim, prompt.strip()) for claim in claims]
        return Extraction(claims, f"{self.name}/{self.version}", tuple(notices))

    def _prose_claims(
        self,
        text: str,
        block: Block,
        doc: Doc,
        memory: list[context.Mention],
        decompose_sentences: bool,
    ) -> list[Claim]:
        where = _locator(block)
        out: list[Claim] = []
        for sentence in doc.sents:
            if not sentence.text.strip():
                continue
            whole = Draft({t.i for t in sentence if not t.is_space})
            if not whole.tokens:
                continue
            reason = "heading" if block.kind is BlockKind.HEADING else sentence_reason(sentence)
            if reason is not None or not decompose_sentences:
                out.append(self._claim(text, block, doc, whole, reason, keep_text=True))
                continue
            seen: set[str] = set()
            for draft in decompose(sentence):
                draft.tokens -= {i for i in draft.tokens if doc[i].is_space}
                if not draft.tokens:
                    continue
                context.resolve(draft, doc, memory, where)
                claim = self._claim(text, block, doc, draft, claim_reason(doc, draft))
                if claim.text and claim.text.lower() not in seen:
                    seen.add(claim.text.lower())
                    out.append(claim)
            if not seen:  # the parse gave nothing usable: the sentence is the claim
                out.append(self._claim(text, block, doc, whole, None, keep_text=True))
        return out

    @staticmethod
    def _claim(
        text: str,
        block: Block,
        doc: Doc,
        draft: Draft,
        reason: str | None,
        keep_text: bool = False,
    ) -> Claim:
        # An emoji or other pictograph before or inside a sentence is decoration, not part
        # of what it claims ("🗼 The Eiffel Tower is in Paris").
        words = {i for i in draft.tokens if not _pictograph(doc[i].text)}
        if words and words != draft.tokens:
            draft = draft.copy(tokens=words)
        spans = [
            _trim_punct(text, block.original(doc[i].idx, doc[i].idx + len(doc[i])))
            for i in draft.tokens
            if not doc[i].is_punct or len(draft.tokens) == 1
        ] or [block.original(doc[i].idx, doc[i].idx + len(doc[i])) for i in draft.tokens]
        merged = _merge(text, spans)
        source = " ".join(s.slice(text) for s in merged)
        if keep_text:
            first, last = doc[min(draft.tokens)], doc[max(draft.tokens)]
            claim_text = doc.text[first.idx : last.idx + len(last)]
        else:
            claim_text = render(doc, draft)
        return Claim(claim_text or source, source, merged, reason is None, reason)


def _locator(block: Block) -> Callable[[int], float]:
    def where(offset: int) -> float:
        if not block.offsets:
            return float(block.span.start)
        return float(block.offsets[min(offset, len(block.offsets) - 1)])

    return where


def _as_answer(claim: Claim, question: str) -> Claim:
    """A bare answer ("Delhi") to a question states something only with the question."""
    if claim.reason != "no_statement":
        return claim
    return Claim(f"{question} {claim.text}", claim.source_text, claim.spans, True, None)


def _whole(text: str, span: Span, reason: str) -> Claim:
    return Claim(span.slice(text), span.slice(text), (span,), False, reason)


def _table_claims(text: str, row: Block, header: Block | None) -> list[Claim]:
    """A data row states one fact per column: "<first cell>, <column>: <cell>"."""
    cells = [c for c in row.cells if c.end > c.start]
    if not cells:
        return []
    names = [c.slice(text) for c in header.cells] if header else []
    subject = row.cells[0]
    if len(cells) == 1 or subject.end == subject.start:
        return [Claim(row.span.slice(text), row.span.slice(text), tuple(cells), True, None)]
    claims = []
    for column, cell in enumerate(row.cells[1:], start=1):
        if cell.end == cell.start:
            continue
        name = names[column] if column < len(names) else ""
        label = f"{name}: " if name else ""
        claim_text = f"{subject.slice(text)}, {label}{cell.slice(text)}."
        source = f"{subject.slice(text)} {cell.slice(text)}"
        claims.append(Claim(claim_text, source, (subject, cell), True, None))
    return claims
