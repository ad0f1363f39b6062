"""``claimsieve eval`` and ``claimsieve train`` end to end, on the real models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from claims.evaluation import response_verdict, retrieval_figures
from service.cli import main
from service.settings import get_settings
from tests.factories import Api, document_rows

pytestmark = pytest.mark.models

CORPUS = [
    *[{"id": r["id"], "title": r["title"], "text": r["text"]} for r in document_rows()],
    {
        "id": "nile",
        "title": "Nile",
        "text": "The Nile is a river in Africa. It flows north into the Mediterranean Sea.",
    },
    {
        "id": "everest",
        "title": "Mount Everest",
        "text": "Mount Everest is the highest mountain on Earth. It was first climbed in 1953.",
    },
]
CLAIMS = [
    {
        "id": "c1",
        "claim": "Marie Curie was born in Warsaw.",
        "label": "SUPPORTED",
        "evidence_ids": ["curie"],
    },
    {
        "id": "c2",
        "claim": "Marie Curie was born in 1901.",
        "label": "REFUTED",
        "evidence_ids": ["curie"],
    },
    {
        "id": "c3",
        "claim": "Python was first released in 1991.",
        "label": "SUPPORTED",
        "evidence_ids": ["python"],
    },
    {
        "id": "c4",
        "claim": "Mount Everest was first climbed in 1988.",
        "label": "REFUTED",
        "evidence_ids": ["everest"],
    },
    {
        "id": "c5",
        "claim": "The Nile is home to crocodiles.",
        "label": "NEI",
        "evidence_ids": ["nile"],
    },
    {
        "id": "c6",
        "claim": "The Eiffel Tower is in Paris.",
        "label": "DISPUTED",
        "evidence_ids": ["eiffel"],
    },
]
ANSWERS = [
    {
        "id": "q1",
        "question": "Where was Marie Curie born?",
        "response": "Warsaw",
        "label": "SUPPORTED",
        "evidence_ids": ["curie"],
    },
    {
        "id": "q2",
        "question": "Where was Marie Curie born?",
        "response": "She was born in Paris.",
        "label": "HALLUCINATED",
        "evidence_ids": ["curie"],
    },
    {
        "id": "q3",
        "question": "When was Python first released?",
        "response": "Python was first released in 1991.",
        "label": "SUPPORTED",
        "evidence_ids": ["python"],
    },
]


def write(folder: Path, claims: list[dict], corpus: list[dict] = CORPUS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "claims.jsonl").write_text("".join(json.dumps(r) + "\n" for r in claims))
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    return folder


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLAIMSIEVE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def run_eval(folder: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "eval",
            "--claims",
            str(folder / "claims.jsonl"),
            "--corpus",
            str(folder / "corpus.jsonl"),
            "--out",
            str(out),
            *extra,
        ]
    )


def test_eval_gold_writes_predictions_report_and_plots(
    tmp_path: Path, data_dir: Path, capsys
) -> None:
    folder = write(tmp_path / "set", CLAIMS)
    assert run_eval(folder, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "features/" in printed
    rows = [
        json.loads(line)
        for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    ]
    assert [r["id"] for r in rows] == ["c1", "c2", "c3", "c4", "c5"]  # DISPUTED skipped
    for r in rows:
        assert set(r) == {"id", "gold", "pred", "confidence", "scores"}
        assert r["confidence"] == max(r["scores"].values())
    assert rows[4]["gold"] == "NOT_ENOUGH_INFO"
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["n"] == 5 and report["unit"] == "claim" and report["setting"] == "gold"
    correct = sum(r["gold"] == r["pred"] for r in rows)
    assert report["accuracy"] == pytest.approx(correct / 5)
    assert sum(sum(row.values()) for row in report["confusion"].values()) == 5
    for key in (
        "macro_f1",
        "balanced_accuracy",
        "binary_balanced_accuracy",
        "ece",
        "claims_per_s",
        "per_label",
    ):
        assert key in report
    for png in ("confusion.png", "reliability.png"):
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_reports_contrastive_pairs_per_type_and_their_held_out_half(
    tmp_path: Path, data_dir: Path, capsys
) -> None:
    def twin(pair: str, kind: str, part: str, true: str, false: str, doc: str) -> list[dict]:
        common = {"pair": pair, "type": kind, "split": part, "evidence_ids": [doc]}
        return [
            {"id": f"{pair}:true", "claim": true, "label": "SUPPORTED", **common},
            {"id": f"{pair}:false", "claim": false, "label": "REFUTED", **common},
        ]

    rows = [
        *twin(
            "p1",
            "date_mismatch",
            "test",
            "Mount Everest was first climbed in 1953.",
            "Mount Everest was first climbed in 1988.",
            "everest",
        ),
        *twin(
            "p2",
            "order",
            "test",
            "The Nile flows north into the Mediterranean Sea.",
            "The Nile flows south into the Mediterranean Sea.",
            "nile",
        ),
        *twin(
            "p3",
            "date_mismatch",
            "train",
            "Marie Curie was born in 1867.",
            "Marie Curie was born in 1901.",
            "curie",
        ),
    ]
    folder = write(tmp_path / "contrast", rows)
    assert run_eval(folder, tmp_path / "out", "--part", "test") == 0
    assert "true→REFUTED" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["n"] == 4  # the fixed split column, not the hash: the test pairs only
    by_type = report["by_type"]
    assert set(by_type) == {"date_mismatch", "order", "all"}
    assert by_type["all"]["false"] == by_type["all"]["true"] == 2
    predictions = {
        r["id"]: r["pred"]
        for r in map(json.loads, (tmp_path / "out" / "predictions.jsonl").read_text().splitlines())
    }
    caught = sum(predictions[f"{p}:false"] != "SUPPORTED" for p in ("p1", "p2")) / 2
    assert by_type["all"]["false_caught"] == pytest.approx(caught)
    assert predictions["p1:false"] == "REFUTED"  # a plain date mismatch, both sides shown


def test_eval_reads_inference_pairs_without_a_corpus(tmp_path: Path, data_dir: Path) -> None:
    pairs = [
        {
            "id": "n1",
            "premise": "A man is playing a guitar on stage.",
            "hypothesis": "A man is playing a guitar.",
            "label": "entailment",
        },
        {
            "id": "n2",
            "premise": "The door is open.",
            "hypothesis": "The door is not open.",
            "label": "contradiction",
        },
        {
            "id": "n3",
            "premise": "A dog runs in a park.",
            "hypothesis": "The dog is hungry.",
            "label": "non_entailment",
        },
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pairs))
    out = tmp_path / "out"
    assert main(["eval", "--claims", str(path), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 3
    gold = [
        json.loads(line)["gold"] for line in (out / "predictions.jsonl").read_text().splitlines()
    ]
    assert gold == ["SUPPORTED", "REFUTED", "NOT_SUPPORTED"]


def test_eval_retrieval_reports_recall_and_ranked_ids(tmp_path: Path, data_dir: Path) -> None:
    folder = write(tmp_path / "set", CLAIMS)
    assert run_eval(folder, tmp_path / "out", "--setting", "retrieval") == 0
    rows = [
        json.loads(line)
        for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    ]
    assert all(r["retrieved"] and len(r["retrieved"]) <= 10 for r in rows)
    assert rows[0]["retrieved"][0] == "curie"
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["retrieval"]["claims_with_gold"] == 5
    assert report["retrieval"]["recall@5"] == pytest.approx(1.0)


def test_eval_responses_are_judged_by_their_claims(tmp_path: Path, data_dir: Path) -> None:
    folder = write(tmp_path / "qa", ANSWERS)
    assert run_eval(folder, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["unit"] == "response" and set(report["confusion"]) == {
        "SUPPORTED",
        "HALLUCINATED",
    }
    rows = [
        json.loads(line)
        for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    ]
    assert rows[0]["claims"][0]["text"] == "Where was Marie Curie born? Warsaw"


def test_eval_bad_input_is_a_clear_error(tmp_path: Path, data_dir: Path, capsys) -> None:
    folder = write(tmp_path / "bad", [{"id": "x", "label": "SUPPORTED"}])
    assert run_eval(folder, tmp_path / "out") == 1
    assert "claims.jsonl:1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert (
        main(
            [
                "eval",
                "--claims",
                str(tmp_path / "nope.jsonl"),
                "--corpus",
                "x",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )


def test_response_and_retrieval_helpers() -> None:
    assert response_verdict([], [], frozenset({"REFUTED"}))[0] == "SUPPORTED"
    label, scores = response_verdict(
        ["SUPPORTED", "NOT_ENOUGH_INFO"], [0.9, 0.2], frozenset({"REFUTED", "NOT_ENOUGH_INFO"})
    )
    assert label == "HALLUCINATED" and scores["SUPPORTED"] == pytest.approx(0.2)
    assert (
        response_verdict(["SUPPORTED", "NOT_ENOUGH_INFO"], [0.9, 0.2], frozenset({"REFUTED"}))[0]
        == "SUPPORTED"
    )
    figures = retrieval_figures([{"a", "b"}, {"c"}, set()], [["a", "x", "b"], ["x", "c"], ["y"]])
    assert figures["recall@1"] == pytest.approx(0.25) and figures["recall@5"] == pytest.approx(1.0)
    assert figures["mrr"] == pytest.approx(0.75) and figures["claims_with_gold"] == 2


def test_train_from_labels_and_generated_pairs_then_eval_with_it(
    tmp_path: Path, data_dir: Path, capsys
) -> None:
    folder = write(tmp_path / "set", CLAIMS)
    corpus = tmp_path / "set" / "corpus.jsonl"
    head = tmp_path / "head"
    code = main(
        [
            "train",
            "--labelled",
            str(folder),
            "--generate",
            str(corpus),
            "--pairs",
            "40",
            "--out",
            str(head),
            "--version",
            "t-1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    card = json.loads((head / "head.json").read_text())
    assert card["version"] == "t-1" and card["trained_on"]["set"] == 5
    assert card["trained_on"]["generated"] > 0
    assert run_eval(folder, tmp_path / "out", "--head", str(head)) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["verifier"] == "features/t-1"
    assert main(["train", "--out", str(head)]) == 1
    assert "give training data" in capsys.readouterr().err


def test_train_from_reviews_adds_them_to_the_shipped_head(
    api: Api, tmp_path: Path, monkeypatch, capsys
) -> None:
    trainer = api.headers("trainer")
    text = " ".join(
        f"Marie Curie was born in Warsaw in {1850 + n}."
        if n % 2
        else f"Python {n} was released in {1990 + n}."
        for n in range(24)
    )
    check = api.client.post(
        "/v1/checks", json={"text": text}, headers=api.headers("pipeline")
    ).json()
    assert len(check["claims"]) >= 20
    for n, claim in enumerate(check["claims"]):
        label = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")[n % 3]
        body = {"action": "correct", "label": label, "expected_version": 1}
        assert (
            api.client.post(
                f"/v1/claims/{claim['id']}/reviews", json=body, headers=trainer
            ).status_code
            == 201
        )
    monkeypatch.setenv("CLAIMSIEVE_DATA_DIR", str(api.settings.data_dir))
    get_settings.cache_clear()
    try:
        code = main(
            [
                "train",
                "--from-reviews",
                "--base",
                "default",
                "--out",
                str(tmp_path / "h"),
                "--version",
                "r-1",
            ]
        )
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    card = json.loads((tmp_path / "h" / "head.json").read_text())
    from claims import head as heads
    from service.components import default_head_path

    shipped = heads.load(default_head_path())
    kept = card["trained_on"]["review"]
    held = len(check["claims"]) - kept
    assert 0 < held < len(check["claims"]) and card["rows"] == shipped.card["rows"] + kept
    assert f"on {held} held-out reviews: base accuracy" in captured.out and "-> new" in captured.out
    # The cross head comes along: same encoder adapters, classifier refitted on the kept reviews.
    from claims import cross

    before, after = cross.load(default_head_path()), cross.load(tmp_path / "h")
    assert before is not None and after is not None
    assert [a["pairs"] for a in after.card["adapted"]] == [kept] and after.version == "r-1"
    assert after.card["adapted"][0]["strength"] in cross.STRENGTHS
    for name, array in before.arrays.items():
        if name.startswith("encoder."):
            np.testing.assert_array_equal(after.arrays[name], array)
    assert not np.allclose(after.arrays["classifier.weight"], before.arrays["classifier.weight"])


def test_train_on_pairs_generated_from_a_service_corpus(
    api: Api, tmp_path: Path, monkeypatch, capsys
) -> None:
    rows = [
        {
            "id": f"city-{n}",
            "title": city,
            "text": f"{city} is a city in {country}. It had {n + 2} million inhabitants in "
            f"{1990 + n}. {city} was founded in the year {1100 + 37 * n}. The river {river} "
            f"flows through {city}. {city} hosted a large exhibition in {1950 + n}.",
        }
        for n, (city, country, river) in enumerate(
            [
                ("Paris", "France", "Seine"),
                ("Vienna", "Austria", "Danube"),
                ("Cairo", "Egypt", "Nile"),
                ("London", "England", "Thames"),
            ]
        )
    ]
    response = api.client.post(
        "/v1/corpora/docs/documents", json=rows, headers=api.headers("admin")
    )
    assert response.status_code == 201, response.text
    monkeypatch.setenv("CLAIMSIEVE_DATA_DIR", str(api.settings.data_dir))
    get_settings.cache_clear()
    try:
        code = main(
            ["train", "--generate-corpus", "docs", "--pairs", "30", "--out", str(tmp_path / "g")]
        )
        missing = main(["train", "--generate-corpus", "nope", "--out", str(tmp_path / "n")])
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    card = json.loads((tmp_path / "g" / "head.json").read_text())
    assert card["trained_on"]["generated"] == card["rows"] > 0
    assert "pairs from" in captured.err
    assert missing == 1 and "no corpus named 'nope'" in captured.err


def test_balancing_by_source_evens_labels_inside_each_set_and_keeps_its_weight() -> None:
    from claims.training import Example, balanced_by_source

    rows = (
        [Example("c", (), "REFUTED", "halueval_qa")] * 6
        + [Example("c", (), "SUPPORTED", "halueval_qa")] * 3
        + [Example("c", (), "SUPPORTED", "climate_fever")] * 2
        + [Example("c", (), "NOT_ENOUGH_INFO", "climate_fever:sentence", weight=2.0)] * 4
    )
    out = balanced_by_source(rows)
    assert [e.claim for e in out] == [e.claim for e in rows]

    def weight(label: str, name: str) -> float:
        return sum(e.weight for e in out if e.label == label and e.source.startswith(name))

    # Inside a set each label present weighs the same; the set keeps its total.
    assert weight("REFUTED", "halueval") == pytest.approx(weight("SUPPORTED", "halueval"))
    assert weight("REFUTED", "halueval") + weight("SUPPORTED", "halueval") == pytest.approx(9)
    # ":sentence" rows belong to their set; given weights count, and stay relative in a label.
    assert weight("SUPPORTED", "climate") == pytest.approx(weight("NOT_ENOUGH_INFO", "climate"))
    assert weight("SUPPORTED", "climate") == pytest.approx(5)
    assert balanced_by_source([]) == []
