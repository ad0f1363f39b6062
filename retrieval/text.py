"""Sentence boundaries with character offsets, without a parser (fast enough for indexing)."""

from __future__ import annotations

import re

# A sentence ends at . ! or ? followed by space and an upper-case letter, digit or
# opening quote/bracket, unless the word before the stop is a common abbreviation.
_BOUNDARY = re.compile(r"(?<=[.!?])([\"')\]]?)\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e no fig jan feb mar apr jun jul aug sep sept "
    "oct nov dec u.s u.k inc ltd co corp approx ca".split()
)
# Blank lines, and heading underlines such as "=====" or "*****", end a sentence too.
_PARAGRAPH = re.compile(r"\n[ \t]*\n|\n[ \t]*[=*~^-]{3,}[ \t]*(?:\n|$)")
_WORD_BEFORE = re.compile(r"([A-Za-z.]+)\.$")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split a passage into sentences.

    Args:
        text: Passage text.

    Returns:
        ``(start, end)`` offsets of each sentence, whitespace trimmed, in order.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for brk in [*_PARAGRAPH.finditer(text), None]:
        stop = brk.start() if brk else len(text)
        spans.extend(_sentences(text, cursor, stop))
        cursor = brk.end() if brk else len(text)
    return spans


def titled(title: str, sentence: str) -> str:
    """How an evidence sentence is embedded: with its title, since it often says only "it"."""
    return f"{title}: {sentence}"


def _sentences(text: str, start: int, stop: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for boundary in _BOUNDARY.finditer(text, start, stop):
        before = _WORD_BEFORE.search(text, start, boundary.start())
        if before and before.group(1).lower().rstrip(".") in _ABBREVIATIONS:
            continue
        end = boundary.end(1)
        if text[start:end].strip():
            spans.append(_strip(text, start, end))
        start = boundary.end()
    if text[start:stop].strip():
        spans.append(_strip(text, start, stop))
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
