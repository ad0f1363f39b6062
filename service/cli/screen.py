"""``claimsieve screen IN.jsonl -o OUT.jsonl``: check a file of responses in bulk, resumably.

Rows in: ``{id, text | claims, prompt?, corpus?, metadata?}``. Rows out, one per
row in, in the order read: ``{id, check}`` (the API's answer, not stored) or
``{id, error: {code, message}}`` for an item that cannot be checked (empty, too
long, an unknown corpus). A row that is not an item (bad JSON, no id, a repeated
id) stops the run before anything is checked, each named by its line. Items are
checked a batch at a time (``Checker.check_many``: one embedder call and one
verifier call per batch and corpus). A rerun skips every id already in OUT, so
a run stopped at any point goes on where it was; a line cut short by a crash
is dropped first. At the end, of all of OUT: a summary (items, claims, verdicts,
flagged share; this run's claims/s) printed and written beside it
(``OUT.summary.json``), and a histogram of factuality (``OUT.factuality.png``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.settings import Settings


def add(commands: Any) -> None:
    screen = commands.add_parser(
        "screen", help="check a JSONL file of responses in bulk (resumable), JSONL out"
    )
    screen.add_argument("input", type=Path, help="rows {id, text|claims, prompt?, corpus?}")
    screen.add_argument("-o", "--out", type=Path, required=True, help="JSONL out (appended)")
    screen.add_argument("--batch", type=int, default=16, help="items checked together")
    screen.add_argument("--corpus", help="corpus of the rows that name none")
    screen.add_argument("--top-k", type=int, default=None, help="evidence passages per claim")
    screen.set_defaults(run=_screen)


class BadRow(ValueError):
    """A row of the input that is not an item (its line number and why)."""


def read_items(path: Path, corpus: str | None) -> Iterator[tuple[int, Any]]:
    """``(line number, Screened item or BadRow)`` for each non-blank line of ``path``."""
    from service.pipeline import Screened

    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise BadRow("a row is a JSON object")
                item_id = row.get("id")
                if not isinstance(item_id, str | int) or isinstance(item_id, bool):
                    raise BadRow("a row needs an 'id' (a string or an integer)")
                text, claims = row.get("text"), row.get("claims")
                if (text is None) == (claims is None):
                    raise BadRow("a row needs 'text' or 'claims', not both")
                if text is not None and not isinstance(text, str):
                    raise BadRow("'text' must be a string")
                if claims is not None and not (
                    isinstance(claims, list) and claims and all(isinstance(c, str) for c in claims)
                ):
                    raise BadRow("'claims' must be a non-empty list of strings")
                for key in ("prompt", "corpus"):
                    if row.get(key) is not None and not isinstance(row[key], str):
                        raise BadRow(f"'{key}' must be a string")
                metadata = row.get("metadata") or {}
                if not isinstance(metadata, dict):
                    raise BadRow("'metadata' must be an object")
                yield (
                    number,
                    Screened(
                        item_id,
                        text,
                        tuple(claims) if claims is not None else None,
                        row.get("prompt"),
                        row.get("corpus") or corpus,
                        metadata,
                    ),
                )
            except json.JSONDecodeError as exc:
                yield number, BadRow(f"not valid JSON ({exc.msg})")
            except BadRow as exc:
                yield number, exc


def done_ids(out: Path) -> set[str]:
    """Ids already written to ``out``; a last line cut short by a crash is removed first."""
    if not out.exists():
        return set()
    with out.open("rb+") as handle:
        data = handle.read()
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            handle.truncate(whole)
    ids = set()
    for line in data[:whole].decode("utf-8").splitlines():
        if line.strip():
            ids.add(str(json.loads(line)["id"]))
    return ids


def _screen(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from service import components

    if not args.input.is_file():
        print(f"error: {args.input}: no such file", file=sys.stderr)
        return 1
    if args.batch < 1:
        print("error: --batch must be at least 1", file=sys.stderr)
        return 2
    # The whole file is read first: a bad row stops the run before anything is written.
    items, bad, seen = [], 0, set()
    for number, item in read_items(args.input, args.corpus):
        if not isinstance(item, BadRow) and str(item.id) in seen:
            item = BadRow(f"id {item.id!r} is repeated")
        if isinstance(item, BadRow):
            print(f"error: {args.input}:{number}: {item}", file=sys.stderr)
            bad += 1
            continue
        seen.add(str(item.id))
        items.append(item)
    if bad:
        print(f"error: {bad} bad rows; nothing was checked", file=sys.stderr)
        return 1
    skip = done_ids(args.out)
    todo = [item for item in items if str(item.id) not in skip]
    if len(items) - len(todo):
        print(f"{len(items) - len(todo)} items already in {args.out}: skipped", file=sys.stderr)
    checker = components.build(settings).checker
    tally, claims = Tally(), 0
    started = time.perf_counter()
    with (
        args.out.open("a", encoding="utf-8") as out,
        tqdm(total=len(todo), desc="screen", unit="item", file=sys.stderr) as bar,
    ):
        for start in range(0, len(todo), args.batch):
            batch = todo[start : start + args.batch]
            for item, found in zip(batch, checker.check_many(batch, args.top_k), strict=True):
                out.write(json.dumps(tally.row(item, found), ensure_ascii=False) + "\n")
                claims += 0 if isinstance(found, Exception) else len(found.results)
            out.flush()
            os.fsync(out.fileno())  # a batch written is a batch kept
            bar.update(len(batch))
            bar.set_postfix(claims_per_s=f"{claims / (time.perf_counter() - started):.1f}")
    seconds = time.perf_counter() - started
    # The summary is of the whole output: this run and the runs it resumed.
    with args.out.open(encoding="utf-8") as rows:
        for line in rows:
            tally.count(json.loads(line))
    picture = args.out.with_suffix(".factuality.png")
    tally.histogram(picture)
    summary = args.out.with_suffix(".summary.json")
    this_run = {
        "items": len(todo),
        "claims": claims,
        "seconds": round(seconds, 1),
        "claims_per_s": round(claims / seconds, 2) if seconds else None,
    }
    report = json.dumps({**tally.summary(), "this_run": this_run}, indent=2)
    summary.write_text(report + "\n", encoding="utf-8")
    print(report, file=sys.stderr)
    print(f"wrote {args.out}, {summary} and {picture}", file=sys.stderr)
    return 0


class Tally:
    """What a screen found, from its output rows: counts and factuality per item."""

    def __init__(self) -> None:
        self.items = self.failed = self.claims = self.flagged = 0
        self.verdicts: Counter[str] = Counter()
        self.factuality: list[float] = []

    def row(self, item: Any, found: Any) -> dict[str, Any]:
        """The output row of one item."""
        from claims.errors import ClaimsError
        from service.errors import ServiceError
        from service.schemas import CheckOut

        if isinstance(found, ClaimsError | ServiceError):
            return {"id": item.id, "error": {"code": found.code, "message": found.message}}
        check = CheckOut.from_result(found, item.metadata).model_dump(mode="json")
        return {"id": item.id, "check": check}

    def count(self, row: dict[str, Any]) -> None:
        self.items += 1
        if "error" in row:
            self.failed += 1
            return
        claims, summary = row["check"]["claims"], row["check"]["summary"]
        self.claims += len(claims)
        self.flagged += summary["flagged"]
        self.verdicts.update(c["verdict"] for c in claims if c["verdict"])
        if summary["factuality"] is not None:
            self.factuality.append(summary["factuality"])

    def summary(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "failed": self.failed,
            "claims": self.claims,
            "verdicts": dict(sorted(self.verdicts.items())),
            "flagged_share": round(self.flagged / self.claims, 4) if self.claims else None,
        }

    def histogram(self, path: Path) -> None:
        """A small PNG: how many items have each share of supported claims."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axes = plt.subplots(figsize=(5, 3), dpi=100)
        axes.hist(self.factuality, bins=10, range=(0, 1), color="#4c72b0", edgecolor="white")
        axes.set_xlabel("factuality (supported ÷ checkworthy claims)")
        axes.set_ylabel("items")
        axes.set_title(f"factuality of {len(self.factuality)} screened responses")
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)
