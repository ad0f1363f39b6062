"""Cutting a response into blocks (prose, headings, list items, table rows, code).

Each prose block comes with a *clean* text, its inline markdown (emphasis,
inline code ticks, link targets) removed, and a map from every clean character
back to its position in the response, so claims found in the clean text keep
exact spans into what the user sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from claims.types import Span

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?(?:^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
# Used with .match(text, pos), which anchors at pos, so no "^".
_HEADING = re.compile(r"[ \t]*#{1,6}[ \t]+")
_ITEM = re.compile(r"[ \t]*(?:>[ \t]*)*(?:[-*+•][ \t]+|\d{1,3}[.)][ \t]+)?")
_TABLE_ROW = re.compile(r"[ \t]*\|.*\|[ \t]*$")
_TABLE_RULE = re.compile(r"[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")
_SETEXT_RULE = re.compile(r"[ \t]*(?:=+|-{3,}|\*{3,}|_{3,})[ \t]*$")

# Inline markers: strong/emphasis around text, inline code ticks, link and image syntax.
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=[^\s*_])(.+?)(?<=[^\s*_])\1(?![\w*])")
_CODE = re.compile(r"(`+)([^`]+?)\1")
_LINK = re.compile(r"!?\[([^\]\n]+)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")


class BlockKind(StrEnum):
    PROSE = "prose"
    HEADING = "heading"
    CODE = "code"
    TABLE_HEADER = "table_header"
    TABLE_ROW = "table_row"


@dataclass(frozen=True)
class Block:
    """A piece of the response: ``span`` into it, and for prose its clean text and offset map."""

    kind: BlockKind
    span: Span
    clean: str = ""
    offsets: tuple[int, ...] = ()
    cells: tuple[Span, ...] = ()

    def original(self, start: int, end: int) -> Span:
        """The response span of clean characters ``[start, end)``."""
        return Span(self.offsets[start], self.offsets[end - 1] + 1)


def blocks(text: str) -> list[Block]:
    """Cut ``text`` into blocks in order; fenced code is one block, kept out of checking."""
    out: list[Block] = []
    cursor = 0
    for fence in _FENCE.finditer(text):
        out.extend(_prose_blocks(text, cursor, fence.start()))
        out.append(Block(BlockKind.CODE, _strip(text, fence.start(), fence.end())))
        cursor = fence.end()
    out.extend(_prose_blocks(text, cursor, len(text)))
    return [b for b in out if b.span.end > b.span.start]


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)


def _lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    position = start
    for line in text[start:end].splitlines(keepends=True):
        yield position, position + len(line.rstrip("\r\n"))
        position += len(line)


def _prose_blocks(text: str, start: int, end: int) -> Iterator[Block]:
    """Paragraphs are joined lines; headings, list items and table rows stand alone."""
    lines = list(_lines(text, start, end))
    paragraph: list[tuple[int, int]] = []

    def flush() -> Iterator[Block]:
        if paragraph:
            yield _prose(text, paragraph[0][0], paragraph[-1][1], BlockKind.PROSE)
            paragraph.clear()

    for number, (line_start, line_end) in enumerate(lines):
        line = text[line_start:line_end]
        if not line.strip() or _SETEXT_RULE.match(line):
            yield from flush()
            continue
        if _TABLE_ROW.match(line) or _TABLE_RULE.match(line) and "|" in line:
            yield from flush()
            if _TABLE_RULE.match(line):
                continue
            following = lines[number + 1] if number + 1 < len(lines) else None
            header = following is not None and bool(
                _TABLE_RULE.match(text[following[0] : following[1]])
            )
            yield _table_row(text, line_start, line_end, header)
            continue
        if _HEADING.match(line):
            yield from flush()
            yield _prose(text, line_start, line_end, BlockKind.HEADING)
            continue
        item = _ITEM.match(line)
        if item and item.end() > 0 and line[: item.end()].strip():
            yield from flush()
        paragraph.append((line_start, line_end))
        if item and item.end() > 0 and line[: item.end()].strip():
            yield from flush()
    yield from flush()


def _table_row(text: str, start: int, end: int, header: bool) -> Block:
    cells = []
    cursor = text.index("|", start) + 1
    while cursor < end:
        bar = text.find("|", cursor, end)
        stop = bar if bar >= 0 else end
        cell = _strip(text, cursor, stop)
        cells.append(cell)
        cursor = stop + 1
    kind = BlockKind.TABLE_HEADER if header else BlockKind.TABLE_ROW
    return Block(kind, _strip(text, start, end), cells=tuple(cells))


def _prose(text: str, start: int, end: int, kind: BlockKind) -> Block:
    """A prose block with line markers and inline markdown dropped from its clean text."""
    keep = [True] * (end - start)

    def drop(a: int, b: int) -> None:
        for i in range(a - start, b - start):
            keep[i] = False

    # Line markers (heading hashes, quote marks, bullets, numbers) at the start of each line.
    for line_start, line_end in _lines(text, start, end):
        marker = (_HEADING.match(text, line_start, line_end)) or _ITEM.match(
            text, line_start, line_end
        )
        if marker and marker.end() > line_start:
            drop(line_start, marker.end())
    for link in _LINK.finditer(text, start, end):
        drop(link.start(), link.start(1))
        drop(link.end(1), link.end())
    for pattern in (_CODE, _STRONG, _EMPHASIS):
        for match in pattern.finditer(text, start, end):
            if not keep[match.start() - start]:
                continue
            drop(match.start(1), match.end(1))
            drop(match.end(2), match.end())
    chars = [(start + i) for i, k in enumerate(keep) if k]
    # Line breaks inside a paragraph are spaces to the parser (same length, so offsets hold).
    clean = "".join(" " if text[i] in "\r\n" else text[i] for i in chars)
    # Leading/trailing whitespace belongs to no sentence.
    lead = len(clean) - len(clean.lstrip())
    trail = len(clean.rstrip())
    chars = chars[lead:trail]
    clean = clean[lead:trail]
    span = Span(chars[0], chars[-1] + 1) if chars else Span(start, start)
    return Block(kind, span, clean, tuple(chars))
