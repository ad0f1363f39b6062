"""Inference pairs as training examples (claims.training.nli_examples)."""

from __future__ import annotations

import json
from pathlib import Path

from claims.training import nli_examples, shares_content_word


def _write(folder: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    lines = [
        json.dumps({"id": f"nli:{name}:{i}", "premise": p, "hypothesis": h, "label": label})
        for i, (p, h, label) in enumerate(rows)
    ]
    (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")


def test_a_caption_contradiction_about_another_event_can_be_taught_as_not_supported(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path,
        "snli",
        [
            (
                "Two men on bicycles compete in a race.",
                "A few people are catching fish.",
                "contradiction",
            ),
            ("A man is riding a bicycle.", "The man is sleeping on a bicycle.", "contradiction"),
            ("A dog runs in a field.", "An animal is outside.", "entailment"),
        ],
    )
    _write(
        tmp_path, "breaking_nli", [("A tall man sings.", "A short woman dances.", "contradiction")]
    )
    _write(tmp_path, "sick", [("A dog runs in a field.", "An animal is outside.", "entailment")])

    examples = nli_examples(
        tmp_path, names=("snli", "breaking_nli"), exclude=("sick",), unrelated_captions_two_way=True
    )

    labels = {e.claim: e.label for e in examples}
    # Another event in the same photo is a contradiction to a captioner, not to a fact checker.
    assert labels["A few people are catching fish."] == "NOT_SUPPORTED"
    # The same subject doing something else stays a contradiction.
    assert labels["The man is sleeping on a bicycle."] == "REFUTED"
    # Only caption files are read that way; evaluation rows never train.
    assert labels["A short woman dances."] == "REFUTED"
    assert "An animal is outside." not in labels
    # By default (the shipped heads) the file's label stands.
    plain = nli_examples(tmp_path, names=("snli",), exclude=("sick",))
    assert {e.claim: e.label for e in plain}["A few people are catching fish."] == "REFUTED"


def test_content_words_ignore_case_stop_words_and_plural_s() -> None:
    assert shares_content_word("Two Dogs play.", "A dog sleeps.")
    assert not shares_content_word("The men are in a park.", "They were at the beach.")
