"""Bulk screening: many items checked together give the verdicts one check gives, and
``claimsieve screen`` writes a row per item, resumes, and refuses bad rows before any work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service import components
from service.cli import main
from service.cli.screen import done_ids
from service.pipeline import Screened
from service.settings import get_settings
from tests.factories import Api, FakeEmbedder

TEXTS = [
    "The Eiffel Tower was completed in 1889. It is in Paris.",
    "Marie Curie was born in Warsaw in 1867. She won two Nobel Prizes.",
    "Python was first released in 1991 by Guido van Rossum.",
]


def test_many_items_get_the_verdicts_one_check_gives(api: Api) -> None:
    checker: Any = api.client.app.state.checker  # type: ignore[attr-defined]
    items = [Screened(f"t{n}", text) for n, text in enumerate(TEXTS)]
    items += [
        Screened("given", claims=("The Eiffel Tower is in Rome.",)),
        Screened("empty", "   "),
        Screened("nowhere", TEXTS[0], corpus="nope"),
    ]
    found = checker.check_many(items)
    assert len(found) == len(items)
    for item, result in zip(items[:3], found[:3], strict=True):
        alone = checker.check(item.text)
        assert [str(r.verdict.label) for r in result.results if r.verdict] == [
            str(r.verdict.label) for r in alone.results if r.verdict
        ]
        assert result.results and result.kind == "check"
    assert found[3].kind == "verify" and found[3].results[0].claim.text == items[3].claims[0]
    assert [getattr(e, "code", None) for e in found[4:]] == ["empty_text", "unknown_corpus"]


@pytest.fixture
def screen_env(api: Api, monkeypatch: pytest.MonkeyPatch):
    """The CLI on the test app's data folder and corpus, with the fake embedder."""
    monkeypatch.setenv("CLAIMSIEVE_DATA_DIR", str(api.settings.data_dir))
    monkeypatch.setenv("CLAIMSIEVE_DEFAULT_CORPUS", "docs")
    monkeypatch.setenv("CLAIMSIEVE_BUILD_DEFAULT_CORPUS", "false")
    build = components.build
    monkeypatch.setattr(components, "build", lambda settings: build(settings, FakeEmbedder()))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_screen_writes_a_row_per_item_and_resumes(screen_env, tmp_path: Path, capsys) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"id": n, "text": t, "metadata": {"n": n}} for n, t in enumerate(TEXTS)]
    rows.append({"id": "empty", "text": " "})
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["screen", str(source), "-o", str(out), "--batch", "2"]) == 0
    written = _rows(out)
    assert [r["id"] for r in written] == [0, 1, 2, "empty"]
    assert all(r["check"]["claims"] and r["check"]["stored"] is False for r in written[:3])
    assert written[1]["check"]["metadata"] == {"n": 1}
    assert written[3]["error"]["code"] == "empty_text"
    summary = json.loads(capsys.readouterr().err.split("\n{", 1)[1].rsplit("}", 1)[0].join("{}"))
    assert summary["items"] == 4 and summary["failed"] == 1 and summary["claims"] > 3
    assert out.with_suffix(".factuality.png").stat().st_size > 1000

    # A crash cut the last line short: it is dropped, its item checked again, nothing twice.
    out.write_text(out.read_text().rsplit("\n", 2)[0] + "\n" + '{"id": "empt')
    assert done_ids(out) == {"0", "1", "2"}
    source.write_text(source.read_text() + json.dumps({"id": "late", "text": TEXTS[0]}) + "\n")
    assert main(["screen", str(source), "-o", str(out)]) == 0
    assert [r["id"] for r in _rows(out)] == [0, 1, 2, "empty", "late"]
    assert "3 items already in" in capsys.readouterr().err


def test_bad_rows_are_named_and_nothing_is_checked(screen_env, tmp_path: Path, capsys) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        json.dumps({"id": "a", "text": TEXTS[0]})
        + "\n{not json\n"
        + json.dumps({"id": "a", "text": TEXTS[1]})
        + "\n"
        + json.dumps({"text": TEXTS[1]})
        + "\n"
        + json.dumps({"id": "b", "text": "x", "claims": ["y"]})
        + "\n"
    )
    assert main(["screen", str(source), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    for number, why in [
        (2, "not valid JSON"),
        (3, "repeated"),
        (4, "needs an 'id'"),
        (5, "not both"),
    ]:
        assert f"in.jsonl:{number}: " in err and why in err
    assert not out.exists()
