"""Corpora over the API: create, add documents (JSON and NDJSON), show, search."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from service.app import create_app
from service.store import keys as key_store
from tests.factories import Api, FakeEmbedder, assert_problem, make_settings, open_api


def test_new_documents_make_a_new_version_without_reembedding_old_ones(api: Api) -> None:
    corpus = api.client.get("/v1/corpora/docs", headers=api.headers("trainer")).json()
    assert corpus["version"] == 1 and corpus["documents"] == 3 and corpus["passages"] >= 3

    embedded_before = api.embedder.texts
    ndjson = json.dumps(
        {"id": "moon", "title": "Moon", "text": "The Moon orbits the Earth. It is 384,400 km away."}
    )
    response = api.client.post(
        "/v1/corpora/docs/documents",
        content=ndjson + "\n",
        headers={**api.headers("admin"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "corpus": "docs",
        "version": 2,
        "added": 1,
        "replaced": 0,
        "unchanged": 0,
        "deleted": 0,
        "passages": corpus["passages"] + 1,
        "documents": 4,
        "not_found": [],
    }
    # Its 2 sentences; the passage vector is their mean, nothing else is embedded again.
    assert api.embedder.texts - embedded_before == 2

    search = api.client.get(
        "/v1/corpora/docs/search",
        params={"q": "moon orbits earth", "k": 2},
        headers=api.headers("pipeline"),
    ).json()
    assert search["corpus"] == {"name": "docs", "version": 2}
    assert search["results"][0]["document_id"] == "moon"
    assert len(search["results"]) == 2
    scores = [r["score"] for r in search["results"]]
    assert scores == sorted(scores, reverse=True)


def test_same_documents_again_change_nothing_and_replacements_replace(api: Api) -> None:
    rows = [
        {
            "id": "python",
            "title": "Python",
            "text": "Python is a programming language created by Guido van Rossum. "
            "It was first released in 1991.",
        }
    ]
    same = api.client.post("/v1/corpora/docs/documents", json=rows, headers=api.headers("admin"))
    assert same.status_code == 200  # nothing was created
    assert same.json()["version"] == 1 and same.json()["unchanged"] == 1

    rows[0]["text"] = "Python is a snake of the family Pythonidae."
    changed = api.client.post("/v1/corpora/docs/documents", json=rows, headers=api.headers("admin"))
    assert changed.json()["version"] == 2 and changed.json()["replaced"] == 1
    hits = api.client.get(
        "/v1/corpora/docs/search",
        params={"q": "Guido van Rossum", "k": 10},
        headers=api.headers("admin"),
    ).json()["results"]
    assert all("Guido" not in hit["text"] for hit in hits)


def test_list_and_create_corpora(api: Api) -> None:
    created = api.client.post(
        "/v1/corpora",
        json={"name": "empty", "description": "nothing"},
        headers=api.headers("admin"),
    )
    assert created.status_code == 201
    assert created.json()["version"] == 0 and created.json()["passages"] == 0
    names = [c["name"] for c in api.client.get("/v1/corpora", headers=api.headers("admin")).json()]
    assert names == ["docs", "empty"]
    again = api.client.post("/v1/corpora", json={"name": "empty"}, headers=api.headers("admin"))
    assert again.status_code == 409 and again.json()["code"] == "corpus_exists"
    check = api.client.post(
        "/v1/checks",
        json={"text": "Paris is in France.", "corpus": "empty"},
        headers=api.headers("pipeline"),
    ).json()
    assert check["claims"][0]["verdict"] == "NOT_ENOUGH_INFO"
    assert check["claims"][0]["reasons"][0]["code"] == "no_evidence"


def test_delete_a_document_then_rebuild(api: Api) -> None:
    admin = api.headers("admin")
    deleted = api.client.delete("/v1/corpora/docs/documents/curie", headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["version"] == 2 and deleted.json()["deleted"] == 1
    shown = api.client.get("/v1/corpora/docs", headers=admin).json()
    assert (shown["documents"], shown["tombstones"], shown["dense_index"]) == (2, 1, "flat")
    for mode in ("hybrid", "dense", "sparse"):
        found = api.client.get(
            "/v1/corpora/docs/search",
            params={"q": "Marie Curie Warsaw", "k": 10, "mode": mode},
            headers=admin,
        ).json()
        assert found["mode"] == mode
        assert "curie" not in {r["document_id"] for r in found["results"]}, mode
    rebuilt = api.client.post("/v1/corpora/docs/rebuild", headers=admin)
    assert rebuilt.status_code == 201 and rebuilt.json()["version"] == 3
    assert api.client.get("/v1/corpora/docs", headers=admin).json()["tombstones"] == 0
    versions = api.client.get("/v1/corpora/docs/versions", headers=api.headers("trainer")).json()
    assert [(v["version"], v["current"]) for v in versions] == [(1, False), (2, False), (3, True)]
    assert [v["documents"] for v in versions] == [3, 2, 2]
    assert all(v["available"] for v in versions)  # three versions are kept by default


def test_change_routes_answer_problems(api: Api) -> None:
    admin, pipeline = api.headers("admin"), api.headers("pipeline")
    assert_problem(
        api.client.delete("/v1/corpora/docs/documents/nope", headers=admin),
        404,
        "document_not_found",
    )
    assert_problem(
        api.client.delete("/v1/corpora/nope/documents/x", headers=admin), 404, "corpus_not_found"
    )
    assert_problem(api.client.post("/v1/corpora/nope/rebuild", headers=admin), 404)
    assert_problem(api.client.get("/v1/corpora/nope/versions", headers=admin), 404)
    assert_problem(api.client.delete("/v1/corpora/docs/documents/curie", headers=pipeline), 403)
    assert_problem(api.client.post("/v1/corpora/docs/rebuild", headers=pipeline), 403)
    assert_problem(
        api.client.get(
            "/v1/corpora/docs/search", params={"q": "x", "mode": "fuzzy"}, headers=admin
        ),
        422,
        "validation_error",
    )
    # Nothing above made a version.
    assert api.client.get("/v1/corpora/docs", headers=admin).json()["version"] == 1


def test_uploaded_files_become_documents_and_bad_ones_change_nothing(api: Api) -> None:
    admin = api.headers("admin")
    page = (
        b"<html><head><title>Mars</title><script>track()</script></head>"
        b"<body><h1>Mars</h1><p>Mars has two small moons, Phobos and Deimos.</p></body></html>"
    )
    venus = b'{"id": "venus", "title": "Venus", "text": "Venus is the hottest planet."}\n'
    files = [
        (
            "file",
            ("notes/tides.md", b"# Tides\n\nThe Moon raises tides on Earth.\n", "text/markdown"),
        ),
        ("file", ("mars.html", page, "text/html")),
        ("file", ("more.jsonl", venus, "application/x-ndjson")),
    ]
    response = api.client.post("/v1/corpora/docs/documents", files=files, headers=admin)
    assert response.status_code == 201, response.text
    assert (response.json()["version"], response.json()["added"]) == (2, 3)
    found = api.client.get(
        "/v1/corpora/docs/search", params={"q": "moons Phobos Deimos", "k": 1}, headers=admin
    ).json()["results"][0]
    # A text or HTML file's id is its name (a browser's folder dropped); HTML gives its title
    # and visible text only.
    assert (found["document_id"], found["title"]) == ("mars.html", "Mars")
    assert "Phobos" in found["text"] and "track()" not in found["text"]
    tides = api.client.get(
        "/v1/corpora/docs/search", params={"q": "tides", "k": 1}, headers=admin
    ).json()["results"][0]
    assert (tides["document_id"], tides["title"]) == ("tides.md", "Tides")

    def upload(*parts: tuple[str, object]) -> object:
        return api.client.post("/v1/corpora/docs/documents", files=list(parts), headers=admin)

    good = ("file", ("ok.txt", b"Saturn has rings.", "text/plain"))
    for bad, code, says in [
        (("file", ("paper.pdf", b"%PDF-1.7", "application/pdf")), "invalid_document", "unknown"),
        (
            ("file", ("latin.txt", "caf\xe9".encode("latin-1"), "text/plain")),
            "invalid_document",
            "UTF-8",
        ),
        (("file", ("empty.md", b"  \n", "text/markdown")), "invalid_document", "no text"),
        (
            ("file", ("bad.jsonl", b'{"id": "x"}\n', "application/x-ndjson")),
            "invalid_document",
            "bad.jsonl:1",
        ),
        (("file", ("ok.txt", b"Saturn again.", "text/plain")), "duplicate_document_id", "ok.txt"),
        (("id", (None, b"saturn")), "invalid_document", "not a file"),
    ]:
        problem = assert_problem(upload(good, bad), 422, code)
        assert says in problem["detail"], problem
    # Every bad upload was refused whole: the good file beside it was not indexed either.
    shown = api.client.get("/v1/corpora/docs", headers=admin).json()
    assert (shown["version"], shown["documents"]) == (2, 6)


def test_documents_are_listed_read_and_deleted_by_id_even_with_a_slash(api: Api) -> None:
    admin, trainer = api.headers("admin"), api.headers("trainer")
    rows = [{"id": "guides/leave.md", "title": "Leave", "text": "Staff get 25 days of leave."}]
    assert (
        api.client.post("/v1/corpora/docs/documents", json=rows, headers=admin).status_code == 201
    )
    listed = api.client.get("/v1/corpora/docs/documents", headers=trainer).json()
    assert (listed["corpus"], listed["total"], listed["offset"]) == (
        {"name": "docs", "version": 2},
        4,
        0,
    )
    ids = [d["id"] for d in listed["documents"]]
    assert len(ids) == 4 and ids[-1] == "guides/leave.md"
    assert listed["documents"][-1] == {
        "id": "guides/leave.md",
        "title": "Leave",
        "metadata": {},
        "chars": 27,
        "passages": 1,
    }
    pages = [
        api.client.get(
            "/v1/corpora/docs/documents", params={"limit": 3, "offset": o}, headers=trainer
        ).json()["documents"]
        for o in (0, 3, 6)
    ]
    assert [d["id"] for page in pages for d in page] == ids and pages[-1] == []

    read = api.client.get("/v1/corpora/docs/documents/guides/leave.md", headers=trainer).json()
    assert (read["text"], read["passages"]) == (rows[0]["text"], [{"start": 0, "end": 27}])
    assert read["corpus"] == {"name": "docs", "version": 2}

    deleted = api.client.delete("/v1/corpora/docs/documents/guides/leave.md", headers=admin)
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1, deleted.text
    assert_problem(
        api.client.get("/v1/corpora/docs/documents/guides/leave.md", headers=trainer),
        404,
        "document_not_found",
    )
    assert_problem(api.client.get("/v1/corpora/nope/documents", headers=trainer), 404)
    assert_problem(
        api.client.get("/v1/corpora/docs/documents", params={"limit": 0}, headers=trainer), 422
    )
    assert_problem(api.client.get("/v1/corpora/docs/documents"), 401)


def test_a_corpus_above_the_threshold_is_served_from_the_compressed_index(tmp_path) -> None:
    # The settings' ann_kind default (ivfpq) above a threshold every corpus passes.
    for api in open_api(make_settings(tmp_path, ann_threshold=1), FakeEmbedder()):
        admin = api.headers("admin")
        shown = api.client.get("/v1/corpora/docs", headers=admin).json()
        assert shown["dense_index"] == "ivfpq"
        query = {"q": "Marie Curie was born in Warsaw", "k": 2, "mode": "dense"}
        found = api.client.get("/v1/corpora/docs/search", params=query, headers=admin).json()
        assert found["results"][0]["document_id"] == "curie"
        api.client.delete("/v1/corpora/docs/documents/curie", headers=admin)
        found = api.client.get("/v1/corpora/docs/search", params=query, headers=admin).json()
        assert "curie" not in {r["document_id"] for r in found["results"]}


class RenamedEmbedder(FakeEmbedder):
    """The same vectors under another name: a service switched to another model."""

    name = "fake-hashing-2"


def test_a_corpus_made_by_another_embedder_is_409_until_reembedded(tmp_path) -> None:
    settings = make_settings(tmp_path)
    for _ in open_api(settings, FakeEmbedder()):
        pass  # corpus docs, version 1, embedded by fake-hashing
    app = create_app(settings, embedder=RenamedEmbedder())
    with TestClient(app, raise_server_exceptions=False) as client:
        with app.state.sessions() as db:
            admin = {"Authorization": f"Bearer {key_store.create_key(db, 'a', 'admin')[1]}"}
        refused = assert_problem(
            client.post("/v1/checks", json={"text": "Curie was born in Warsaw."}, headers=admin),
            409,
            "embedder_mismatch",
        )
        assert "fake-hashing (128 dimensions), not fake-hashing-2" in refused["detail"]
        assert "rebuild docs --reembed" in refused["detail"]
        assert_problem(
            client.get("/v1/corpora/docs/search", params={"q": "Warsaw"}, headers=admin),
            409,
            "embedder_mismatch",
        )
        for change in (
            client.delete("/v1/corpora/docs/documents/curie", headers=admin),
            client.post("/v1/corpora/docs/rebuild", headers=admin),
        ):
            assert "--reembed" in assert_problem(change, 409, "embedder_mismatch")["detail"]
        assert client.get("/readyz").status_code == 503
        assert client.get("/v1/corpora/docs", headers=admin).json()["version"] == 1

        rebuilt = client.post("/v1/corpora/docs/rebuild?reembed=true", headers=admin)
        assert rebuilt.status_code == 201, rebuilt.text
        assert rebuilt.json()["version"] == 2 and rebuilt.json()["documents"] == 3
        shown = client.get("/v1/corpora/docs", headers=admin).json()
        assert shown["embedder"] == "fake-hashing-2"
        found = client.get(
            "/v1/corpora/docs/search", params={"q": "born in Warsaw", "k": 1}, headers=admin
        ).json()
        assert found["results"][0]["document_id"] == "curie"
        assert client.get("/readyz").status_code == 200
