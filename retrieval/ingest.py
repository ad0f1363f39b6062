"""Reading documents from files and cutting them into passages with offsets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from retrieval.errors import IngestError
from retrieval.text import split_sentences
from retrieval.types import Document, Passage

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def document_from_mapping(row: object, where: str) -> Document:
    """Build a document from a decoded JSON object ``{id, title?, text, metadata?}``.

    Args:
        row: The decoded JSON value.
        where: Where it came from, for error messages (e.g. ``docs.jsonl:12``).
    """
    if not isinstance(row, dict):
        raise IngestError(f"{where}: a document must be a JSON object")
    doc_id, text = row.get("id"), row.get("text")
    title = row.get("title") or doc_id
    metadata = row.get("metadata") or {}
    if not isinstance(doc_id, str | int) or str(doc_id).strip() == "":
        raise IngestError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise IngestError(f"{where}: 'text' must be a non-empty string")
    if not isinstance(title, str | int) or not isinstance(metadata, dict):
        raise IngestError(f"{where}: 'title' must be a string and 'metadata' an object")
    return Document(str(doc_id), str(title), text, metadata)


def read_jsonl(path: Path) -> Iterator[Document]:
    """Stream documents from a JSONL file, one ``{id, title, text}`` object a line."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise IngestError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            yield document_from_mapping(row, f"{path}:{number}")


def read_text_file(path: Path, doc_id: str) -> Document:
    """One document per text or markdown file; its title is the first heading or line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: not UTF-8 text") from exc
    first = next(
        (line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()), ""
    )
    return Document(doc_id, first[:200] or path.stem, text, {"path": str(path)})


def read_paths(paths: Iterable[Path]) -> Iterator[Document]:
    """Documents from JSONL files, text/markdown files and folders (recursively).

    Args:
        paths: Files or folders. Files in folders are read when their suffix is known.
    """
    for path in paths:
        if not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix in JSONL_SUFFIXES:
                    yield from read_jsonl(child)
                elif child.suffix in TEXT_SUFFIXES:
                    yield read_text_file(child, child.relative_to(path).as_posix())
        elif path.suffix in JSONL_SUFFIXES:
            yield from read_jsonl(path)
        elif path.suffix in TEXT_SUFFIXES:
            yield read_text_file(path, path.name)
        else:
            raise IngestError(f"{path}: unknown file type (use .jsonl, .ndjson, .txt or .md)")


def _pieces(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut ``text[start:end]`` at sentence ends, then at spaces, into pieces ≤ max_chars."""
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max((m.end() for m in _SENTENCE_END.finditer(window)), default=0)
        if cut < max_chars // 3:
            space = window.rfind(" ")
            cut = space + 1 if space > max_chars // 3 else max_chars
        yield start, start + cut
        start += cut
    yield start, end


def chunk(document: Document, max_chars: int = 800) -> list[Passage]:
    """Cut a document into passages of at most ``max_chars``, keeping document offsets.

    Paragraphs are packed together while they fit; a long paragraph is cut at
    sentence ends. Leading and trailing whitespace never belongs to a passage.

    Args:
        document: The document to cut.
        max_chars: Passage size budget in characters (MiniLM reads about 256 word pieces).
    """
    text = document.text
    paragraphs: list[tuple[int, int]] = []
    cursor = 0
    for brk in [*_PARAGRAPH_BREAK.finditer(text), None]:
        stop = brk.start() if brk else len(text)
        if text[cursor:stop].strip():
            paragraphs.extend(_pieces(text, cursor, stop, max_chars))
        cursor = brk.end() if brk else len(text)

    spans: list[tuple[int, int]] = []
    for start, end in paragraphs:
        if spans and end - spans[-1][0] <= max_chars:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))

    passages = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            passage_text = text[start:end]
            passages.append(
                Passage(
                    f"{document.id}@{start}",
                    document.id,
                    document.title,
                    passage_text,
                    start,
                    end,
                    tuple(split_sentences(passage_text)),
                )
            )
    return passages
