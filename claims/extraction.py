"""Turning a response into claims with exact character spans.

Version 1 segments into sentences with spaCy (markdown lines and fenced code
kept apart first) and marks sentences that are not checkable. Atomic
decomposition and decontextualisation plug in behind the same ``Extractor``
interface.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from claims.errors import EmptyTextError, TextTooLongError
from claims.nlp import NLP_LOCK
from claims.types import Claim, Span

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Span as SpacySpan

_FENCE = re.compile(r"^(```|~~~).*?(?:^\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
# Used with .match(text, pos), which anchors at pos, so no "^".
# A markdown line marker: heading, quote, bullet or numbered item, table pipe.
_LINE_MARKER = re.compile(r"[ \t]*(?:#{1,6}[ \t]+|>[ \t]*|[-*+][ \t]+|\d{1,3}[.)][ \t]+|\|[ \t]*)")
_HEADING = re.compile(r"[ \t]*#{1,6}[ \t]+")
_FILLER = re.compile(
    r"^(hi|hello|hey|thanks|thank you|sure|certainly|of course|absolutely|great question"
    r"|good question|i hope (this|that) helps|hope (this|that) helps|let me know"
    r"|feel free|happy to help|here (is|are)( an?| the)? (answer|summary|overview|list))\b",
    re.IGNORECASE,
)
_OPINION = re.compile(
    r"\b(i think|i believe|i feel|in my opinion|in my view|i would say|personally"
    r"|i guess|i suppose)\b",
    re.IGNORECASE,
)


class Extractor(Protocol):
    """Anything that turns a response (and optional prompt) into claims."""

    name: str
    version: str

    def extract(self, text: str, prompt: str | None = None) -> list[Claim]: ...


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


def _blocks(text: str) -> Iterator[tuple[Span, bool]]:
    """Yield (span, is_code) for fenced code blocks and for each non-empty line between."""
    cursor = 0
    for fence in _FENCE.finditer(text):
        yield from _lines(text, cursor, fence.start())
        yield Span(fence.start(), fence.end()), True
        cursor = fence.end()
    yield from _lines(text, cursor, len(text))


def _lines(text: str, start: int, end: int) -> Iterator[tuple[Span, bool]]:
    """Group prose into paragraphs, but keep markdown items (bullets, headings) on their own."""
    para_start: int | None = None
    para_end = start
    position = start
    for line in text[start:end].splitlines(keepends=True):
        line_start, line_end = position, position + len(line.rstrip("\r\n"))
        position += len(line)
        if not line.strip() or _LINE_MARKER.match(line):
            if para_start is not None:
                yield Span(para_start, para_end), False
                para_start = None
            if line.strip():
                yield Span(line_start, line_end), False
            continue
        if para_start is None:
            para_start = line_start
        para_end = line_end
    if para_start is not None:
        yield Span(para_start, para_end), False


def _trim(text: str, span: Span) -> Span | None:
    """Drop markdown markers and surrounding whitespace/emphasis from a span."""
    start, end = span.start, span.end
    marker = _LINE_MARKER.match(text, start, end)
    if marker:
        start = marker.end()
    while start < end and (text[start].isspace() or text[start] in "*_`|"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in "*_`|"):
        end -= 1
    return Span(start, end) if end > start else None


def checkworthiness(sentence: SpacySpan, is_heading: bool) -> str | None:
    """Return why a sentence is not worth checking (a stable code), or ``None``.

    Args:
        sentence: A spaCy sentence.
        is_heading: Whether it was a markdown heading.
    """
    text = sentence.text.strip()
    if is_heading:
        return "heading"
    if text.endswith("?"):
        return "question"
    if _FILLER.match(text):
        return "filler"
    if _OPINION.search(text):
        return "opinion"
    words = [t for t in sentence if not t.is_punct and not t.is_space]
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


class SentenceExtractor:
    """Sentence-level claims from spaCy segmentation with exact spans.

    Args:
        nlp: A loaded spaCy pipeline with a parser.
        max_chars: Longest response accepted.
    """

    name = "sentences"
    version = "1"

    def __init__(self, nlp: Language, max_chars: int = 20_000) -> None:
        self._nlp = nlp
        self._max_chars = max_chars

    def extract(self, text: str, prompt: str | None = None) -> list[Claim]:
        """Split ``text`` into sentence claims; ``prompt`` is unused in version 1."""
        validate_text(text, self._max_chars)
        blocks = list(_blocks(text))
        prose = [span for span, is_code in blocks if not is_code]
        with NLP_LOCK:
            docs = iter(list(self._nlp.pipe(span.slice(text) for span in prose)))
        claims: list[Claim] = []
        for block, is_code in blocks:
            if is_code:
                code = _trim(text, block) or block
                claims.append(Claim(code.slice(text), code.slice(text), (code,), False, "code"))
                continue
            doc = next(docs)
            heading = bool(_HEADING.match(text, block.start))
            for sentence in doc.sents:
                span = _trim(
                    text,
                    Span(block.start + sentence.start_char, block.start + sentence.end_char),
                )
                if span is None:
                    continue
                piece = span.slice(text)
                reason = checkworthiness(sentence, heading)
                claims.append(Claim(piece, piece, (span,), reason is None, reason))
        return claims
