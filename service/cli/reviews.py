"""``claimsieve export``, ``import-reviews`` and ``calibrate``: the trainers' reviews."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import datetime
from typing import Any

from service.settings import Settings


def add(commands: Any) -> None:
    export = commands.add_parser("export", help="export reviews as JSONL or preference pairs")
    export.add_argument("--format", choices=["jsonl", "preference"], default="jsonl")
    export.add_argument("--corpus")
    export.add_argument("--since", type=datetime.fromisoformat, help="ISO date or time")
    export.add_argument("--until", type=datetime.fromisoformat, help="ISO date or time")
    export.add_argument("--out", default="-", help="file (default: standard output)")
    export.set_defaults(run=_export)

    imported = commands.add_parser("import-reviews", help="load a JSONL review export")
    imported.add_argument("file")
    imported.set_defaults(run=_import_reviews)

    calibrate = commands.add_parser(
        "calibrate", help="fit a corpus's confidence calibration from its reviews"
    )
    calibrate.add_argument("corpus")
    calibrate.add_argument("--method", choices=["auto", "temperature", "isotonic"], default="auto")
    calibrate.add_argument("--holdout", type=float, default=0.5, help="share kept out of the fit")
    calibrate.set_defaults(run=_calibrate)


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from service import components
    from service.reviews import preference_rows
    from service.store import reviews as review_store

    _, sessions = components.open_database(settings)
    target: Any = (
        contextlib.nullcontext(sys.stdout)
        if args.out == "-"
        else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    )
    count = 0
    with sessions() as db, target as out:
        rows = review_store.export_rows(db, args.corpus, args.since, args.until)
        for row in rows if args.format == "jsonl" else preference_rows(rows):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    print(f"exported {count} {args.format} rows", file=sys.stderr)
    return 0


def _import_reviews(args: argparse.Namespace, settings: Settings) -> int:
    from service import components
    from service.store import reviews as review_store

    _, sessions = components.open_database(settings)
    rows = []
    with open(args.file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    print(
                        f"error: {args.file}:{number}: not valid JSON ({exc.msg})", file=sys.stderr
                    )
                    return 1
    with sessions() as db:
        try:
            added = review_store.import_rows(db, rows)
        except (KeyError, TypeError, ValueError) as exc:
            print(f"error: {args.file} is not a review export ({exc!r})", file=sys.stderr)
            return 1
    print(f"imported {added} reviews ({len(rows) - added} already present)", file=sys.stderr)
    return 0


def _calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from service import components, reviews

    _, sessions = components.open_database(settings)
    with sessions() as db:
        row = reviews.calibrate(db, args.corpus, args.method, args.holdout, "cli")
        print(
            f"{args.corpus}: calibration v{row.version} ({row.method}) fitted on {row.fitted_on} "
            f"reviews; ECE on {row.held_out} held-out reviews {row.ece_before:.4f} -> "
            f"{row.ece_after:.4f}"
        )
    return 0
