from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrieval.builtin import python_reference
from retrieval.errors import IngestError
from retrieval.ingest import chunk, read_paths
from retrieval.types import Document


@given(st.text(min_size=1, max_size=3000), st.integers(min_value=100, max_value=900))
def test_chunks_keep_document_offsets_and_cover_the_text(text: str, max_chars: int) -> None:
    document = Document("d", "D", text)
    passages = chunk(document, max_chars)
    end = 0
    for passage in passages:
        assert text[passage.start : passage.end] == passage.text
        assert passage.text == passage.text.strip() and passage.text
        assert len(passage.text) <= max_chars
        assert passage.start >= end
        end = passage.end
    covered = "".join(p.text for p in passages)
    assert "".join(covered.split()) == "".join(text.split())  # nothing but whitespace is lost


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
    with pytest.raises(IngestError, match="unknown file type"):
        list(read_paths([tmp_path / "x.pdf"]))
    with pytest.raises(IngestError, match="no such file"):
        list(read_paths([tmp_path / "missing.jsonl"]))


def test_builtin_corpus_is_the_python_reference() -> None:
    documents = python_reference()
    ids = {d.id for d in documents}
    assert "topic:for" in ids and "builtin:len" in ids
    assert len(ids) == len(documents) > 150
    assert all(d.text.strip() for d in documents)
