"""Bulk figures: screen vs one check at a time over HTTP, Ray vs the service, ranking.

``throughput``: N responses of about 150 words, each made of sentences drawn
from the built-in corpus (a third of them with one word flipped, so verdicts
vary), checked one by one with ``POST /v1/checks`` over loopback HTTP (the app
served in this process) and with ``claimsieve screen`` (batched), in the same
run: claims/s of each and their ratio. ``ray``: the same kind of items screened
with ``--ray local`` with 1 and 2 workers, and checked by the service; labels
compared item by item. ``rank``: prompts of four responses, each three claims
from the test half of a dev set (0 to 3 of them false), ranked by
``POST /v1/rank`` with the set's corpus; the share of pairs of responses with
different numbers of false claims that come out in the right order.

    python bench/bulk.py throughput [--items 200]
    python bench/bulk.py ray [--items 200]
    python bench/bulk.py rank [--set ../shared/eval/fever_sf] [--prompts 50]

Each writes ``bench/results/bulk-<mode>.json``. Uses the data folder of the
settings (default ./data).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLIPS = {
    "mutable": "immutable",
    "immutable": "mutable",
    "first": "last",
    "before": "after",
    "after": "before",
    "always": "never",
    "true": "false",
    "false": "true",
    "can": "cannot",
    "new": "old",
    "all": "some",
}


def responses(count: int, words: int = 150, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` responses of about ``words`` words from the built-in corpus's sentences."""
    from retrieval.builtin import python_reference

    sentences = [
        s.strip()
        for document in python_reference()
        for s in re.split(r"(?<=[.!?])\s+", document.text)
        if 8 <= len(s.split()) <= 30 and s.strip()[-1:] == "." and "\n" not in s.strip()
    ]
    rng = random.Random(seed)
    out = []
    for n in range(count):
        picked: list[str] = []
        while sum(len(s.split()) for s in picked) < words:
            sentence = rng.choice(sentences)
            if n % 3 == 0:
                tokens = sentence.split()
                spots = [k for k, t in enumerate(tokens) if t.lower() in FLIPS]
                if spots:
                    k = rng.choice(spots)
                    tokens[k] = FLIPS[tokens[k].lower()]
                    sentence = " ".join(tokens)
            picked.append(sentence)
        out.append({"id": f"r{n}", "text": " ".join(picked)})
    return out


def _write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _screen(source: Path, out: Path, *flags: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from service.cli import main as cli

    assert cli(["screen", str(source), "-o", str(out), *flags]) == 0
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    return summary, [json.loads(line) for line in out.read_text().splitlines()]


def _served() -> tuple[Any, Any]:
    """The app on a loopback port with no job workers: a client, and a stop function."""
    import httpx

    from bench.latency import serve
    from service.settings import get_settings

    _, url, stop = serve(get_settings().model_copy(update={"job_workers": 0}))
    return httpx.Client(base_url=url, timeout=300), stop


def _labels(check: dict[str, Any]) -> list[str | None]:
    return [c["verdict"] for c in check["claims"]]


def throughput(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rows = responses(args.items)
    source = _write_rows(rows, work / "in.jsonl")
    client, stop = _served()
    claims, started = 0, time.perf_counter()
    by_http = []
    try:
        for n, row in enumerate(rows, start=1):
            answer = client.post("/v1/checks", json={"text": row["text"], "store": False})
            answer.raise_for_status()
            by_http.append(_labels(answer.json()))
            claims += len(answer.json()["claims"])
            if n % 25 == 0:
                rate = claims / (time.perf_counter() - started)
                print(f"http: {n}/{len(rows)} items, {rate:.2f} claims/s", file=sys.stderr)
    finally:
        client.close()
        stop()
    http_s = time.perf_counter() - started
    summary, screened = _screen(source, work / "out.jsonl", "--batch", str(args.batch))
    screen_rate = summary["this_run"]["claims_per_s"]
    http_rate = claims / http_s
    same = sum(_labels(r["check"]) == h for r, h in zip(screened, by_http, strict=True))
    return {
        "items": len(rows),
        "words_per_item": round(sum(len(r["text"].split()) for r in rows) / len(rows), 1),
        "claims": claims,
        "http_one_by_one": {"seconds": round(http_s, 1), "claims_per_s": round(http_rate, 2)},
        "screen": {
            "seconds": summary["this_run"]["seconds"],
            "claims_per_s": screen_rate,
            "batch": args.batch,
        },
        "ratio_screen_to_http": round(screen_rate / http_rate, 2),
        "items_with_identical_labels": same,
    }


def ray(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rows = responses(args.items, words=40, seed=11)
    source = _write_rows(rows, work / "in.jsonl")
    client, stop = _served()
    try:
        service = []
        for row in rows:
            answer = client.post("/v1/checks", json={"text": row["text"], "store": False})
            answer.raise_for_status()
            service.append(_labels(answer.json()))
    finally:
        client.close()
        stop()
    figures: dict[str, Any] = {"items": len(rows), "claims": sum(map(len, service))}
    for workers in (1, 2):
        summary, screened = _screen(
            source,
            work / f"ray{workers}.jsonl",
            "--ray",
            "local",
            "--workers",
            str(workers),
            "--batch",
            str(args.batch),
        )
        same = sum(_labels(r["check"]) == s for r, s in zip(screened, service, strict=True))
        figures[f"ray_{workers}_workers"] = {
            "seconds_with_actor_start": summary["this_run"]["seconds"],
            "claims_per_s": summary["this_run"]["claims_per_s"],
            "items_with_labels_identical_to_the_service": same,
        }
    return figures


def rank(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from claims.datasets import read_corpus, read_items, split
    from service.cli import main as cli

    items = [
        i
        for i in read_items(args.set / "claims.jsonl")
        if split(i) == "test" and i.label in ("SUPPORTED", "REFUTED")
    ]
    true = [i.claim for i in items if i.label == "SUPPORTED"]
    false = [i.claim for i in items if i.label == "REFUTED"]
    rng = random.Random(5)
    corpus = f"bench-{args.set.name.replace('_', '-')}"
    documents = work / "corpus.jsonl"
    with documents.open("w", encoding="utf-8") as out:
        for passage_id, passage in read_corpus(args.set / "corpus.jsonl").items():
            row = {"id": passage_id, "title": passage.title, "text": passage.text}
            out.write(json.dumps(row) + "\n")
    cli(["corpus", "create", corpus])
    assert cli(["corpus", "add", corpus, str(documents)]) == 0
    client, stop = _served()
    right = pairs = 0
    try:
        for n in range(args.prompts):
            wrong_counts = [0, 1, 2, 3]
            texts = []
            for wrong in wrong_counts:
                claims = rng.sample(false, wrong) + rng.sample(true, 3 - wrong)
                rng.shuffle(claims)
                texts.append(" ".join(c.rstrip(".") + "." for c in claims))
            order = list(range(4))
            rng.shuffle(order)
            answer = client.post(
                "/v1/rank",
                json={
                    "prompt": f"prompt {n}",
                    "responses": [texts[k] for k in order],
                    "corpus": corpus,
                },
            )
            answer.raise_for_status()
            ranked = [order[r["index"]] for r in answer.json()["ranked"]]
            place = {wrong: position for position, wrong in enumerate(ranked)}
            for a in wrong_counts:
                for b in wrong_counts:
                    if a < b:
                        pairs += 1
                        right += place[a] < place[b]
    finally:
        client.close()
        stop()
    return {
        "set": str(args.set),
        "part": "test",
        "prompts": args.prompts,
        "responses_per_prompt": 4,
        "claims_per_response": 3,
        "pairs": pairs,
        "pairs_in_the_right_order": right,
        "share_right": round(right / pairs, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("throughput", "ray", "rank"))
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--set", type=Path, default=ROOT.parent / "shared/eval/fever_sf")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = globals()[args.mode](args, Path(folder))
    figures["cpus"] = os.cpu_count()
    out = args.out or ROOT / "bench" / "results" / f"bulk-{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
