"""A restart keeps every stored check and loads the index snapshot without re-embedding."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from tests.factories import FakeEmbedder, make_settings


def test_restart_keeps_checks_and_reuses_the_snapshot(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", auth=False, default_corpus="python-reference", build_default_corpus=True
    )
    first = FakeEmbedder()
    with TestClient(create_app(settings, embedder=first)) as client:
        assert first.texts > 500  # the built-in corpus was embedded on the first start
        corpus = client.get("/v1/corpora/python-reference").json()
        assert corpus["version"] == 1 and corpus["documents"] > 100
        ids = [
            client.post("/v1/checks", json={"text": f"The for statement loops {n} times."}).json()[
                "id"
            ]
            for n in range(3)
        ]
        stored = [client.get(f"/v1/checks/{i}").json() for i in ids]

    # The data folder may move (a new mount, a restored backup): nothing in it is absolute.
    (tmp_path / "data").rename(tmp_path / "moved")
    settings = settings.model_copy(update={"data_dir": tmp_path / "moved"})
    second = FakeEmbedder()
    with TestClient(create_app(settings, embedder=second)) as client:
        assert second.calls == second.token_calls == 0  # the snapshot was loaded, not built
        assert [client.get(f"/v1/checks/{i}").json() for i in ids] == stored
        assert client.get("/v1/corpora/python-reference").json() == corpus
        client.post("/v1/checks", json={"text": "The while statement repeats."})
        # the claim once, with its word pieces (kept for the verifier); then the word
        # pieces of the evidence sentences
        assert (second.calls, second.token_calls) == (0, 2)
