from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from retrieval.builtin import python_reference
from retrieval.errors import IngestError
from retrieval.ingest import (
    chunk,
    count_tokens,
    html_text,
    jsonl_documents,
    read_paths,
    read_upload,
)
from retrieval.types import Document


@given(
    st.text(alphabet=st.sampled_from("abc def.\n XY?!"), min_size=1, max_size=3000),
    st.integers(min_value=16, max_value=120),
    st.integers(min_value=0, max_value=40),
)
@example("???????????????  ??", 16, 0)  # a cut at the second of two spaces (CI found it)
def test_chunks_keep_offsets_fit_the_budget_overlap_and_cover_the_text(
    text: str, max_tokens: int, overlap: int
) -> None:
    document = Document("d", "D", text)
    passages = chunk(document, max_tokens, overlap)
    covered = [False] * len(text)
    previous_end = 0
    for passage in passages:
        assert text[passage.start : passage.end] == passage.text
        assert passage.text == passage.text.strip() and passage.text
        assert count_tokens(passage.text) <= max_tokens
        assert passage.start >= 0 and passage.end > passage.start
        # Passages move forward; an overlap never reaches back more than the budget allows.
        assert passage.end > previous_end
        if overlap == 0:
            assert passage.start >= previous_end
        previous_end = passage.end
        for i in range(passage.start, passage.end):
            covered[i] = True
    assert all(c or text[i].isspace() for i, c in enumerate(covered))  # only whitespace is lost


def _pieces(texts: list[str]) -> list[int]:
    """A stand-in for word pieces: a word of n letters costs ceil(n / 3)."""
    return [sum(-(-len(w) // 3) for w in re.findall(r"\w+|[^\w\s]", t)) for t in texts]


@given(
    st.text(alphabet=st.sampled_from("abcdefghij kl.\n XY?!"), min_size=1, max_size=3000),
    st.integers(min_value=16, max_value=120),
    st.integers(min_value=0, max_value=40),
)
def test_chunks_fit_a_budget_counted_by_another_measure(
    text: str, max_tokens: int, overlap: int
) -> None:
    passages = chunk(Document("d", "D", text), max_tokens, overlap, _pieces)
    covered = [False] * len(text)
    for passage in passages:
        assert text[passage.start : passage.end] == passage.text
        # Only a single word too long for the budget may exceed it.
        assert _pieces([passage.text])[0] <= max_tokens or count_tokens(passage.text) == 1
        for i in range(passage.start, passage.end):
            covered[i] = True
    assert all(c or text[i].isspace() for i, c in enumerate(covered))


def test_overlap_repeats_the_last_sentences_of_the_passage_before() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(12))
    passages = chunk(Document("d", "D", text), max_tokens=24, overlap=7)
    assert len(passages) > 2
    for before, after in zip(passages, passages[1:], strict=False):
        assert after.start < before.end  # they share a sentence
        assert text[after.start : before.end].startswith("Sentence number")


def test_html_is_read_as_visible_text(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        "<html><head><title>The  Page</title><style>p {color: red}</style></head>"
        "<body><h1>Heading</h1><p>First <b>bold</b> paragraph.</p>"
        "<script>var x = 1;</script><ul><li>One</li><li>Two &amp; three</li></ul></body></html>"
    )
    (document,) = read_paths([tmp_path / "page.html"])
    assert document.title == "The Page"
    assert document.text == "Heading\n\nFirst bold paragraph.\n\nOne\n\nTwo & three"
    assert html_text("<p>a</p>") == ("", "a")


def test_folders_are_filtered_by_globs(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "keep.md").write_text("# Keep\n\nYes.")
    (tmp_path / "docs" / "drop.md").write_text("# Drop\n\nNo.")
    (tmp_path / "docs" / "page.html").write_text("<p>Web.</p>")
    (tmp_path / "notes.txt").write_text("Notes.")
    only_md = read_paths([tmp_path], include=["*.md"], exclude=["drop.*"])
    assert [d.id for d in only_md] == ["docs/keep.md"]
    everything = [d.id for d in read_paths([tmp_path])]
    assert everything == ["docs/drop.md", "docs/keep.md", "docs/page.html", "notes.txt"]


def test_read_jsonl_text_markdown_and_folders(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "x", "title": "X", "text": "Ex.", "metadata": {"k": 1}})
        + "\n\n"
        + json.dumps({"id": 7, "text": "Seven."})
        + "\n"
    )
    sub = tmp_path / "notes"
    sub.mkdir()
    (sub / "n.md").write_text("# Heading here\n\nBody text.")
    (sub / "t.txt").write_text("Plain text file.")
    (sub / "skip.bin").write_bytes(b"\x00\x01")
    docs = list(read_paths([tmp_path]))
    assert [(d.id, d.title) for d in docs] == [
        ("x", "X"),
        ("7", "7"),
        ("notes/n.md", "Heading here"),
        ("notes/t.txt", "Plain text file."),
    ]
    assert docs[0].metadata == {"k": 1}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"id": "a"}), "'text'"),
        (json.dumps({"text": "no id"}), "'id'"),
        (json.dumps(["a", "list"]), "JSON object"),
    ],
)
def test_bad_jsonl_lines_say_where(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "ok", "text": "fine"}) + "\n" + line + "\n")
    with pytest.raises(IngestError, match=message) as error:
        list(read_paths([path]))
    assert "bad.jsonl:2" in error.value.message


def test_unknown_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(
        IngestError, match=r"unknown file type \(use .jsonl, .ndjson, .txt, .md or .html\)"
    ):
        list(read_paths([tmp_path / "x.pdf"]))
    with pytest.raises(IngestError, match="no such file"):
        list(read_paths([tmp_path / "missing.jsonl"]))


def test_files_without_text_are_skipped_in_folders_and_refused_by_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "empty.md").write_text("  \n")
    (tmp_path / "blank.html").write_text("<html><script>x = 1</script></html>")
    (tmp_path / "note.txt").write_text("Llamas live in the Andes.")
    with caplog.at_level("WARNING", logger="claimsieve"):
        assert [d.id for d in read_paths([tmp_path])] == ["note.txt"]
    assert "blank.html: it has no text" in caplog.text and "empty.md" in caplog.text
    with pytest.raises(IngestError, match="empty.md: it has no text"):
        list(read_paths([tmp_path / "empty.md"]))


def test_builtin_corpus_is_the_python_reference() -> None:
    documents = python_reference()
    ids = {d.id for d in documents}
    assert "topic:for" in ids and "builtin:len" in ids
    assert len(ids) == len(documents) > 150
    assert all(d.text.strip() for d in documents)


def test_an_uploaded_file_is_read_like_a_named_one() -> None:
    (doc,) = read_upload("C:\\Users\\ann\\notes.md", b"# Notes\n\nTea at four.\n")
    assert (doc.id, doc.title, doc.metadata) == ("notes.md", "Notes", {"filename": "notes.md"})
    rows = read_upload("d.ndjson", b'{"id": 1, "text": "One."}\r\n\n{"id": "2", "text": "Two."}')
    assert [(d.id, d.title, d.text) for d in rows] == [("1", "1", "One."), ("2", "2", "Two.")]
    for name, data, says in [
        ("scan.pdf", b"%PDF", "unknown file type"),
        ("", b"text", "(no file name): unknown file type"),
        ("a.txt", b"\xff\xfe", "not UTF-8"),
        ("a.html", b"<script>x()</script>", "no text"),
        ("a.jsonl", b"\n\n", "no documents"),
        ("a.jsonl", b'{"id": "a", "text": "A."}\nnot json\n', "a.jsonl:2: not valid JSON"),
    ]:
        with pytest.raises(IngestError, match=re.escape(says)):
            read_upload(name, data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ROW = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=20), st.integers(), st.none()),
        "title": st.one_of(st.text(max_size=20), st.integers(), JSON),
        "text": st.one_of(st.text(max_size=200), JSON),
        "metadata": JSON,
    },
)
SUFFIXES = st.sampled_from([".jsonl", ".ndjson", ".txt", ".md", ".html", ".htm", ".pdf", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ROW, JSON), max_size=5), st.text(max_size=50))
def test_any_jsonl_gives_documents_or_a_clear_error(rows: list[object], junk: str) -> None:
    lines = [json.dumps(r) for r in rows] + [junk]
    try:
        documents = list(jsonl_documents(lines, "up.jsonl"))
    except IngestError as error:
        assert error.message.startswith("up.jsonl:")
        return
    for document in documents:
        assert document.id.strip() and document.text.strip()
        assert isinstance(document.title, str) and isinstance(document.metadata, dict)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=30), SUFFIXES, st.binary(max_size=400) | st.text(max_size=400).map(str.encode)
)
def test_any_uploaded_file_gives_documents_or_a_clear_error(
    name: str, suffix: str, data: bytes
) -> None:
    try:
        documents = read_upload(name + suffix, data)
    except IngestError as error:
        assert error.message
        return
    assert documents
    for document in documents:
        assert document.id and document.text.strip()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "<p>",
                    "</p>",
                    "<script>",
                    "</script>",
                    "<style>x{}</style>",
                    "<br>",
                    "<h1>",
                    "</h1>",
                    "<title>",
                    "</title>",
                    "&amp;",
                    "&#x1F600;",
                    "<!--",
                    "-->",
                    "<a href='x'",
                    ">",
                    "<![CDATA[",
                    "]]>",
                    "<li>",
                    "<table><tr><td>",
                ]
            ),
        ),
        max_size=30,
    )
)
def test_any_html_gives_text_and_never_fails(pieces: list[str]) -> None:
    title, text = html_text("".join(pieces))
    assert isinstance(title, str) and isinstance(text, str)


def test_visible_html_text_is_kept_and_scripts_dropped() -> None:
    title, text = html_text(
        "<html><head><title>Leave</title><script>steal()</script></head>"
        "<body><h1>Leave</h1><p>Employees get 25 days.</p></body></html>"
    )
    assert title == "Leave" and "Employees get 25 days." in text and "steal" not in text
