"""Reading documents from files and cutting them into passages with offsets."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

from retrieval.errors import IngestError
from retrieval.text import split_sentences
from retrieval.types import Document, Passage

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
KNOWN_TYPES = "use .jsonl, .ndjson, .txt, .md or .html"

log = logging.getLogger("claimsieve")


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
        yield from jsonl_documents(lines, str(path))


def jsonl_documents(lines: Iterable[str], where: str) -> Iterator[Document]:
    """Documents from JSONL lines; errors name ``where`` and the line number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IngestError(f"{where}:{number}: not valid JSON ({exc.msg})") from exc
        yield document_from_mapping(row, f"{where}:{number}")


def read_text_file(path: Path, doc_id: str) -> Document:
    """One document per text, markdown or HTML file; its title is the first heading or line."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: not UTF-8 text") from exc
    return text_document(raw, path, doc_id, {"path": str(path)})


def text_document(raw: str, name: Path, doc_id: str, metadata: dict[str, object]) -> Document:
    """The document of a text, markdown or HTML file ``name`` (its suffix says which)."""
    if name.suffix.lower() in HTML_SUFFIXES:
        title, text = html_text(raw)
        return Document(doc_id, title or name.stem, text, metadata)
    first = next(
        (line.strip().lstrip("#").strip() for line in raw.splitlines() if line.strip()), ""
    )
    return Document(doc_id, first[:200] or name.stem, raw, metadata)


def read_upload(filename: str, data: bytes) -> list[Document]:
    """The documents of one uploaded file, read as :func:`read_paths` reads a named file.

    A JSONL or NDJSON file gives its rows; a text, markdown or HTML file gives one
    document whose id is the file's name.
    """
    name = Path(filename.replace("\\", "/")).name  # a browser may send a whole path
    suffix = Path(name).suffix.lower()
    if suffix not in JSONL_SUFFIXES | TEXT_SUFFIXES | HTML_SUFFIXES:
        raise IngestError(f"{name or '(no file name)'}: unknown file type ({KNOWN_TYPES})")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{name}: not UTF-8 text") from exc
    if suffix in JSONL_SUFFIXES:
        documents = list(jsonl_documents(raw.split("\n"), name))
        if not documents:
            raise IngestError(f"{name}: no documents in it")
        return documents
    document = text_document(raw, Path(name), name, {"filename": name})
    if not document.text.strip():
        raise IngestError(f"{name}: it has no text")
    return [document]


class _HtmlText(HTMLParser):
    """Visible text of an HTML page: blocks become paragraphs; scripts and styles are dropped."""

    _BLOCKS = frozenset(
        "p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article header footer "
        "blockquote pre dd dt figcaption".split()
    )
    _HIDDEN = frozenset({"script", "style", "noscript", "template", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> tuple[str, str]:
    """The title and the visible text of an HTML page, paragraphs separated by blank lines."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    paragraphs = (" ".join(p.split()) for p in "".join(parser.parts).split("\n\n"))
    return " ".join(parser.title.split()), "\n\n".join(p for p in paragraphs if p)


def _wanted(path: Path, root: Path, include: Sequence[str], exclude: Sequence[str]) -> bool:
    relative = path.relative_to(root).as_posix()
    if include and not any(fnmatch(relative, g) or fnmatch(path.name, g) for g in include):
        return False
    return not any(fnmatch(relative, g) or fnmatch(path.name, g) for g in exclude)


def read_paths(
    paths: Iterable[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Iterator[Document]:
    """Documents from JSONL, text, markdown and HTML files and folders (recursively), streamed.

    Args:
        paths: Files or folders. Files in folders are read when their suffix is known.
        include: Glob patterns a file in a folder must match (its path below the folder or
            its name), e.g. ``"*.md"``; empty: every known file.
        exclude: Glob patterns of files in folders to skip.

    A file named in ``paths`` with no text is an error; one found in a folder is skipped
    with a warning.
    """
    for path in paths:
        if not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if not _wanted(child, path, include, exclude):
                    continue
                if child.suffix.lower() in JSONL_SUFFIXES:
                    yield from read_jsonl(child)
                elif child.suffix.lower() in TEXT_SUFFIXES | HTML_SUFFIXES:
                    document = read_text_file(child, child.relative_to(path).as_posix())
                    if document.text.strip():
                        yield document
                    else:
                        log.warning("skipped %s: it has no text", child)
        elif path.suffix.lower() in JSONL_SUFFIXES:
            yield from read_jsonl(path)
        elif path.suffix.lower() in TEXT_SUFFIXES | HTML_SUFFIXES:
            document = read_text_file(path, path.name)
            if not document.text.strip():
                raise IngestError(f"{path}: it has no text")
            yield document
        else:
            raise IngestError(f"{path}: unknown file type ({KNOWN_TYPES})")


_TOKEN = re.compile(r"\w+|[^\w\s]")
Counter = Callable[[Sequence[str]], list[int]]


def count_tokens(text: str) -> int:
    """Words and punctuation marks: close to (a little under) MiniLM's word pieces."""
    return len(_TOKEN.findall(text))


def count_all(texts: Sequence[str]) -> list[int]:
    """:func:`count_tokens` of each text."""
    return [count_tokens(t) for t in texts]


def _cut(text: str, start: int, end: int, max_tokens: int) -> Iterator[tuple[int, int]]:
    """Cut an over-long sentence at spaces into pieces of at most ``max_tokens``."""
    while count_tokens(text[start:end]) > max_tokens:
        tokens = list(_TOKEN.finditer(text, start, end))
        cut = tokens[max_tokens - 1].end()
        space = text.rfind(" ", start, cut)
        if space > start + (cut - start) // 3:
            cut = space
        # A run of spaces before the cut stays out of the piece, as it does after it.
        piece_end = cut
        while piece_end > start + 1 and text[piece_end - 1].isspace():
            piece_end -= 1
        yield start, piece_end
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield start, end


def _fitted(
    text: str, start: int, end: int, max_tokens: int, count: Counter, budget: int
) -> list[tuple[tuple[int, int], int]]:
    """A span cut into pieces that each fit ``max_tokens`` by ``count``, with their sizes.

    The cuts are placed by :func:`count_tokens` at ``budget``; a piece still too
    long by ``count`` (word pieces outnumber words) is cut again with a
    proportionally smaller budget. A single word longer than the budget stays whole.
    """
    pieces = list(_cut(text, start, end, budget))
    out: list[tuple[tuple[int, int], int]] = []
    for (a, b), size in zip(pieces, count([text[a:b] for a, b in pieces]), strict=True):
        words = count_tokens(text[a:b])
        if size > max_tokens and words > 1:
            smaller = max(1, min(words - 1, words * max_tokens // size))
            out += _fitted(text, a, b, max_tokens, count, smaller)
        else:
            out.append(((a, b), size))
    return out


def chunk(
    document: Document, max_tokens: int = 200, overlap: int = 30, count: Counter = count_all
) -> list[Passage]:
    """Cut a document into passages of whole sentences, keeping document offsets.

    Sentences (which never run across a blank line) are packed while they fit in
    ``max_tokens`` as ``count`` measures them; a longer sentence is cut at
    spaces. Each passage after the first repeats the last sentences of the one
    before, up to ``overlap`` tokens, so a fact cut at a boundary is still whole
    in one passage.

    Args:
        document: The document to cut.
        max_tokens: Passage budget, in the units of ``count``.
        overlap: Tokens of context carried over from the previous passage (0: none).
        count: How texts are measured, many at a time: :func:`count_all` by default,
            an embedder's word-piece count to make every passage fit its reader.
    """
    text = document.text
    sentences = split_sentences(text)
    fitted: list[tuple[tuple[int, int], int]] = []
    for (s_start, s_end), size in zip(
        sentences, count([text[a:b] for a, b in sentences]), strict=True
    ):
        if size <= max_tokens:
            fitted.append(((s_start, s_end), size))
        else:
            fitted += _fitted(text, s_start, s_end, max_tokens, count, max_tokens)
    pieces = [span for span, _ in fitted]
    sizes = [size for _, size in fitted]
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(pieces):
        last, used = first, sizes[first]
        while last + 1 < len(pieces) and used + sizes[last + 1] <= max_tokens:
            last += 1
            used += sizes[last]
        spans.append((pieces[first][0], pieces[last][1]))
        if last + 1 >= len(pieces):
            break
        # The next passage starts with as many trailing sentences as fit in the overlap.
        following, carried = last + 1, 0
        while (
            following - 1 > first
            and carried + sizes[following - 1] <= overlap
            and carried + sizes[following - 1] + sizes[last + 1] <= max_tokens
        ):
            following -= 1
            carried += sizes[following]
        first = following

    passages = []
    for start, end in spans:
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
