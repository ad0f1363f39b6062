"""The claimsieve command line, run in-process against a temporary data folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from service.settings import get_settings
from service.store import audit
from service.store import db as store_db
from service.store import keys as key_store


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLAIMSIEVE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def test_keys_create_prints_the_key_alone_then_list_and_revoke(data_dir: Path, capsys) -> None:
    assert main(["keys", "create", "--role", "trainer", "--name", "ana"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("cs_")
    key = out.strip()
    engine = store_db.make_engine(get_settings().resolved_database_url)
    with store_db.make_session_factory(engine)() as db:
        found = key_store.find_active_key(db, key)
        assert found is not None and (found.name, found.role) == ("ana", "trainer")
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "trainer\tana" in listed and key not in listed
    assert main(["keys", "revoke", str(found.id)]) == 0
    with store_db.make_session_factory(engine)() as db:
        assert key_store.find_active_key(db, key) is None
    engine.dispose()
    assert main(["keys", "revoke", "999"]) == 1
    assert "no API key" in capsys.readouterr().err


def test_keys_rotate_prints_a_new_key_and_everything_is_audited(data_dir: Path, capsys) -> None:
    assert main(["keys", "create", "--role", "pipeline", "--name", "nightly"]) == 0
    old = capsys.readouterr().out.strip()
    assert main(["keys", "list"]) == 0
    key_id = capsys.readouterr().out.split("\t")[0]
    assert main(["keys", "rotate", key_id, "--grace-hours", "0"]) == 0
    captured = capsys.readouterr()
    new = captured.out.strip()
    assert new.startswith("cs_") and new != old and "works until" in captured.err
    engine = store_db.make_engine(get_settings().resolved_database_url)
    with store_db.make_session_factory(engine)() as db:
        assert key_store.find_active_key(db, old) is None  # no grace asked for
        found = key_store.find_active_key(db, new)
        assert found is not None and (found.name, found.role) == ("nightly", "pipeline")
        actions = [e.action for e in audit.events(db, 10, None, None)]
    engine.dispose()
    assert actions == ["key.rotate", "key.create"]
    assert main(["keys", "list"]) == 0
    assert "expired" in capsys.readouterr().out


def test_db_upgrade_creates_the_database(data_dir: Path) -> None:
    assert main(["db", "upgrade"]) == 0
    assert (data_dir / "claimsieve.db").exists()


def test_serve_refuses_no_auth_off_loopback(data_dir: Path, capsys) -> None:
    assert main(["serve", "--no-auth", "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_bad_arguments_exit_with_usage(data_dir: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "create", "--role", "superuser", "--name", "x"])
    assert exit_info.value.code == 2


@pytest.mark.models
def test_corpus_add_then_check_with_the_real_models(
    data_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tower.md").write_text(
        "# Eiffel Tower\n\nThe Eiffel Tower is a wrought-iron lattice tower in Paris, France. "
        "It was completed in 1889.\n"
    )
    (docs / "more.jsonl").write_text(
        json.dumps(
            {
                "id": "curie",
                "title": "Marie Curie",
                "text": "Marie Curie was born in Warsaw in 1867.",
            }
        )
        + "\n"
    )
    (docs / "skip.html").write_text("<p>Skipped by the glob.</p>")
    assert main(["corpus", "add", "facts", str(docs), "--exclude", "*.html"]) == 0
    assert "facts: version 1, 2 added" in capsys.readouterr().out
    assert main(["corpus", "list"]) == 0
    assert capsys.readouterr().out.startswith("facts\tv1\t2 documents")
    assert main(["corpus", "search", "facts", "Where was Curie born?", "--k", "1"]) == 0
    assert "[Marie Curie] curie" in capsys.readouterr().out
    assert main(["corpus", "search", "facts", "lattice tower", "--mode", "sparse"]) == 0
    assert "tower.md" in capsys.readouterr().out
    assert main(["corpus", "documents", "facts"]) == 0
    assert capsys.readouterr().out.splitlines() == [  # in the order they were added
        "curie\tMarie Curie\t39 chars\t1 passages",
        "tower.md\tEiffel Tower\t109 chars\t1 passages",
    ]

    monkeypatch.setenv("CLAIMSIEVE_DEFAULT_CORPUS", "facts")
    get_settings.cache_clear()
    text = "The Eiffel Tower was completed in 1925. Marie Curie was born in Warsaw."
    assert main(["check", text, "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    verdicts = [c["verdict"] for c in check["claims"]]
    assert verdicts == ["REFUTED", "SUPPORTED"], check["claims"]
    for claim in check["claims"]:
        assert "".join(text[s["start"] : s["end"]] for s in claim["spans"]) == claim["source_text"]
    assert main(["check", text]) == 0
    table = capsys.readouterr().out
    assert "REFUTED" in table and "reason date_mismatch" in table and "factuality 0.50" in table
    # The same text screened in bulk gets the same verdicts: here, in two processes, and
    # on a local Ray cluster with two actors; its false twin ranks below it.
    twin = "The Eiffel Tower was completed in 1889. Marie Curie was born in Warsaw."
    rows = tmp_path / "in.jsonl"
    rows.write_text(
        json.dumps({"id": "r1", "text": text, "prompt": "Tell me about Paris and Warsaw"})
        + "\n"
        + json.dumps({"id": "r2", "text": twin, "prompt": "Tell me about Paris and Warsaw"})
        + "\n"
        + json.dumps({"id": "r3", "claims": ["Marie Curie was born in Paris."]})
        + "\n"
    )
    runs = {
        "here": ["--rank"],
        "processes": ["--workers", "2", "--batch", "1"],
        "ray": ["--ray", "local", "--workers", "2", "--batch", "1"],
    }
    found = {}
    for run, flags in runs.items():
        out = tmp_path / f"{run}.jsonl"
        assert main(["screen", str(rows), "-o", str(out), *flags]) == 0, run
        screened = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["id"] for r in screened] == ["r1", "r2", "r3"], run
        found[run] = [[c["verdict"] for c in r["check"]["claims"]] for r in screened]
    assert found["here"][0] == verdicts and found["here"][1] == ["SUPPORTED", "SUPPORTED"]
    assert found["processes"] == found["here"] and found["ray"] == found["here"]
    (ranking,) = [
        json.loads(line) for line in (tmp_path / "here.ranking.jsonl").read_text().splitlines()
    ]
    assert [r["id"] for r in ranking["ranked"]] == ["r2", "r1"]
    (pair,) = [
        json.loads(line) for line in (tmp_path / "here.pairs.jsonl").read_text().splitlines()
    ]
    assert (pair["chosen"], pair["rejected"]) == (twin, text) and pair["margin"] > 0

    assert main(["corpus", "delete-document", "facts", "curie", "ghost"]) == 0
    captured = capsys.readouterr()
    assert "1 deleted" in captured.out and "no document 'ghost'" in captured.err
    assert main(["corpus", "show", "facts"]) == 0
    assert "v2: 1 documents, 1 passages, 1 tombstones, flat dense index" in capsys.readouterr().out
    assert main(["corpus", "rebuild", "facts"]) == 0
    assert "version 3" in capsys.readouterr().out
    assert main(["corpus", "rebuild", "facts", "--reembed"]) == 0
    assert "version 4, 1 added" in capsys.readouterr().out
    assert main(["corpus", "versions", "facts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("v4") and lines[-1].endswith("(current)")
    assert main(["corpus", "create", "facts"]) == 1  # exists already


def test_corpus_listings_and_missing_things_need_no_models(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def no_models(*args: object, **kwargs: object) -> None:
        raise AssertionError("a corpus listing loaded a model")

    monkeypatch.setattr("service.components.build", no_models)
    assert main(["corpus", "create", "handbook", "--description", "staff rules"]) == 0
    assert capsys.readouterr().out == "created corpus handbook\n"
    assert main(["corpus", "show", "handbook"]) == 0
    assert capsys.readouterr().out == "handbook v0: no documents yet\n"
    assert main(["corpus", "versions", "handbook"]) == 0
    assert main(["corpus", "documents", "handbook"]) == 0
    assert capsys.readouterr().out == ""  # no versions, no documents yet
    assert main(["corpus", "create", "handbook"]) == 1
    assert "already exists" in capsys.readouterr().err
    # A missing corpus or file is said before any model loads.
    for command in (
        ["show", "ghost"],
        ["documents", "ghost"],
        ["search", "ghost", "leave"],
        ["delete-document", "ghost", "a"],
        ["rebuild", "ghost"],
    ):
        assert main(["corpus", *command]) == 1
        assert "no corpus named 'ghost'" in capsys.readouterr().err
    assert main(["corpus", "add", "handbook", "missing.md"]) == 1
    assert "missing.md: no such file or folder" in capsys.readouterr().err


def test_corpus_add_with_a_bad_file_or_name_changes_nothing(
    data_dir: Path, tmp_path: Path, capsys
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n')
    assert main(["corpus", "add", "facts", str(bad)]) == 1
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert main(["corpus", "add", "Bad Name", str(bad)]) == 2
    assert main(["corpus", "add", "facts", str(tmp_path / "missing.md")]) == 1
    assert main(["corpus", "list"]) == 0
    assert capsys.readouterr().out == ""  # no corpus was created


def test_extract_prints_claims_with_spans(data_dir: Path, capsys) -> None:
    text = "Marie Curie was born in Warsaw and moved to Paris. Is that right?"
    assert main(["extract", text, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["extractor"] == "parse/6" and body["warnings"] == []
    assert [(c["text"], c["checkworthy"], c["reason"]) for c in body["claims"]] == [
        ("Marie Curie was born in Warsaw.", True, None),
        ("Marie Curie moved to Paris.", True, None),
        ("Is that right?", False, "question"),
    ]
    moved = body["claims"][1]
    assert [text[s["start"] : s["end"]] for s in moved["spans"]] == [
        "Marie Curie",
        "moved to Paris",
    ]
    assert (
        main(["extract", "She was born in Warsaw.", "--prompt", "Tell me about Marie Curie"]) == 0
    )
    assert "1. Marie Curie was born in Warsaw." in capsys.readouterr().out
    assert not data_dir.exists()  # extraction needs no database and no corpus


def test_extract_jsonl_writes_one_row_per_input_and_reports_bad_rows(
    data_dir: Path, tmp_path: Path, capsys
) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text(
        json.dumps({"id": "a", "response": "Paris and Lyon are in France."})
        + "\n"
        + json.dumps({"id": "b", "response": "   "})
        + "\n"
        + "{not json\n"
        + json.dumps(
            {"id": "c", "response": "It opened in 1937.", "prompt": "The Golden Gate Bridge?"}
        )
        + "\n"
    )
    assert main(["extract", "--jsonl", str(rows)]) == 1  # some rows failed
    captured = capsys.readouterr()
    out = [json.loads(line) for line in captured.out.splitlines()]
    assert [row["id"] for row in out] == ["a", "c"]
    assert [c["text"] for c in out[0]["claims"]] == ["Paris is in France.", "Lyon is in France."]
    assert out[1]["claims"][0]["text"] == "The Golden Gate Bridge opened in 1937."
    assert set(out[0]["claims"][0]) == {"text", "spans", "checkworthy", "reason"}
    assert f"{rows}:2: text is empty" in captured.err and f"{rows}:3:" in captured.err
    assert "extract" in captured.err  # the progress bar


def test_export_import_and_calibrate_from_the_command_line(
    data_dir: Path, tmp_path: Path, capsys
) -> None:
    from claims.types import Label
    from service import components, reviews
    from service.store.reviews import ReviewDraft
    from tests.factories import add_check

    assert main(["db", "upgrade"]) == 0
    _, sessions = components.open_database(get_settings())
    with sessions() as db:
        from service.store import corpora as corpus_store

        corpus_store.create_corpus(db, "docs")
        ids = add_check(db, [("REFUTED", 0.9)] * 6 + [("SUPPORTED", 0.7)] * 6)
        for number, claim_id in enumerate(ids):
            label = "SUPPORTED" if number % 2 else "REFUTED"
            reviews.submit(db, ReviewDraft(claim_id, "ana", "correct", Label(label), 1))
    capsys.readouterr()
    out = tmp_path / "reviews.jsonl"
    assert main(["export", "--out", str(out)]) == 0
    assert "exported 12 jsonl rows" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 12
    assert main(["export", "--format", "preference"]) == 0
    assert capsys.readouterr().out == ""  # no corrected text, so no pairs
    assert main(["import-reviews", str(out)]) == 0
    assert "imported 0 reviews (12 already present)" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "an export"}\n')
    assert main(["import-reviews", str(bad)]) == 1
    assert main(["calibrate", "docs", "--method", "isotonic"]) == 0
    assert "docs: calibration v1 (isotonic) fitted on 6 reviews" in capsys.readouterr().out
    assert main(["calibrate", "nope"]) == 1
