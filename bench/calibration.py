"""Calibration from trainer reviews, simulated with the gold labels of the dev sets.

For each data set (../shared/eval), the whole corpus is ingested into a fresh
service store (SQLite, real MiniLM and spaCy); every claim (DISPUTED left out)
is verified through the service's pipeline (retrieval setting) and stored, and
a simulated trainer reviews it with its gold label. Then the service's own
calibration fit runs on one half of the reviews and expected calibration
error (ECE) is measured on the other half, before and after, for both methods.
Prints and saves bench/results/calibration.json.

    python bench/calibration.py [--eval ../shared/eval] [--datasets fever_sf climate_fever]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from claims import calibration as calibrating  # noqa: E402
from claims.types import Label  # noqa: E402
from retrieval.types import Document  # noqa: E402
from service import components, reviews  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import calibrations as calibration_store  # noqa: E402
from service.store import checks as check_store  # noqa: E402
from service.store import corpora as corpus_store  # noqa: E402
from service.store.reviews import ReviewDraft  # noqa: E402


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def simulate(name: str, folder: Path, work: Path) -> dict[str, Any]:
    settings = Settings(
        data_dir=work / name, default_corpus=name, build_default_corpus=False, auth=False
    )
    built = components.build(settings)
    with built.sessions() as db:
        corpus_store.create_corpus(db, name)
    corpus = read_jsonl(folder / "corpus.jsonl")
    built.checker.corpora.add_documents(
        name, (Document(p["id"], p["title"] or p["id"], p["text"]) for p in corpus), progress=True
    )
    claims = [
        c
        for c in read_jsonl(folder / "claims.jsonl")
        if c.get("claim") and c["label"] != "DISPUTED"
    ]
    started = time.perf_counter()
    reviewed = 0
    for start in range(0, len(claims), 50):
        batch = claims[start : start + 50]
        outcome = built.checker.verify([c["claim"] for c in batch])
        with built.sessions() as db:
            check_store.record(db, outcome)
            for claim_id, row in zip(outcome.claim_ids, batch, strict=True):
                label = "NOT_ENOUGH_INFO" if row["label"] == "NEI" else row["label"]
                reviews.submit(db, ReviewDraft(claim_id, "gold", "correct", Label(label), 1))
                reviewed += 1
    verify_s = time.perf_counter() - started
    with built.sessions() as db:
        samples = calibration_store.samples(db, name)
    result: dict[str, Any] = {"claims": reviewed, "verify_s": round(verify_s, 1)}
    for method in ("auto", "temperature", "isotonic"):
        fit = calibrating.fit(samples, method, holdout=0.5, seed=0)
        result[method] = {
            "fitted_on": fit.fitted_on,
            "held_out": fit.held_out,
            "ece_before": round(fit.ece_before or 0.0, 4),
            "ece_after": round(fit.ece_after or 0.0, 4),
            "chosen": fit.calibration.method,
            "params": fit.calibration.params
            if fit.calibration.method == "temperature"
            else "step function",
        }
    built.engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--datasets", nargs="+", default=["fever_sf", "climate_fever"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "calibration.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "split": "half fit, half held out (seed 0)",
    }
    with tempfile.TemporaryDirectory() as work:
        for name in args.datasets:
            folder = args.eval / name
            if not folder.exists():
                print(f"skipping {name}: {folder} not found", file=sys.stderr)
                continue
            results[name] = simulate(name, folder, Path(work))
    header = ("dataset", "method", "fit", "held out", "ECE before", "ECE after")
    print("{:<15}{:<13}{:>6}{:>10}{:>12}{:>11}".format(*header))
    for name in args.datasets:
        for method in ("auto", "temperature", "isotonic"):
            if name in results:
                r = results[name][method]
                print(
                    f"{name:<15}{method:<13}{r['fitted_on']:>6}{r['held_out']:>10}"
                    f"{r['ece_before']:>12.4f}{r['ece_after']:>11.4f}"
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
