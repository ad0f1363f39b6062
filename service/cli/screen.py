"""``claimsieve screen IN.jsonl -o OUT.jsonl``: check a file of responses in bulk, resumably.

Rows in: ``{id, text | claims, prompt?, corpus?, metadata?}``. Rows out, one per
row in, in the order read: ``{id, check}`` (the API's answer, not stored) or
``{id, error: {code, message}}`` for an item that cannot be checked (empty, too
long, an unknown corpus). A row that is not an item (bad JSON, no id, a repeated
id) stops the run before anything is checked, each named by its line. Items are
checked a batch at a time (``Checker.check_many``: one embedder call and one
verifier call per batch and corpus), in this process, in ``--workers`` processes
(each loads the models once), or on a Ray cluster (``--ray``). A rerun skips
every id already in OUT, so a run stopped at any point goes on where it was; a
line cut short by a crash is dropped first. At the end, of all of OUT: a summary
(items, claims, verdicts, flagged share; this run's claims/s) printed and
written beside it (``OUT.summary.json``), a histogram of factuality
(``OUT.factuality.png``) and, with ``--rank``, the responses to each prompt
ranked (``OUT.ranking.jsonl``) with DPO pairs (``OUT.pairs.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
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
    screen.add_argument(
        "--workers", type=int, default=1, help="processes checking batches (each loads the models)"
    )
    screen.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="check on a Ray cluster ('auto', 'ray://host:10001', or 'local' to start one here); "
        "needs pip install 'claimsieve[ray]'",
    )
    screen.add_argument(
        "--rank", action="store_true", help="rank the responses to each prompt, write DPO pairs"
    )
    screen.set_defaults(run=_screen)


def read_items(path: Path, corpus: str | None) -> Iterator[tuple[int, Any]]:
    """``(line number, Screened item or BadItem)`` for each non-blank line of ``path``."""
    from service.jobs import BadItem, item_from_row

    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, item_from_row(json.loads(line), corpus)
            except json.JSONDecodeError as exc:
                yield number, BadItem(f"not valid JSON ({exc.msg})")
            except BadItem as exc:
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

    from service.jobs import BadItem, Tally
    from service.schemas import job_result

    if not args.input.is_file():
        print(f"error: {args.input}: no such file", file=sys.stderr)
        return 1
    if args.batch < 1 or args.workers < 1:
        print("error: --batch and --workers must be at least 1", file=sys.stderr)
        return 2
    # The whole file is read first: a bad row stops the run before anything is written.
    items, bad, seen = [], 0, set()
    for number, item in read_items(args.input, args.corpus):
        if not isinstance(item, BadItem) and str(item.id) in seen:
            item = BadItem(f"id {item.id!r} is repeated")
        if isinstance(item, BadItem):
            print(f"error: {args.input}:{number}: {item.message}", file=sys.stderr)
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
    batches = [todo[start : start + args.batch] for start in range(0, len(todo), args.batch)]
    if args.ray:
        from service.cli import on_ray

        checked = on_ray.checked(batches, args.ray, args.workers, settings, args.top_k)
    else:
        checked = _checked(batches, args.workers, settings, args.top_k)
    claims = 0
    started = time.perf_counter()
    with (
        args.out.open("a", encoding="utf-8") as out,
        tqdm(total=len(todo), desc="screen", unit="item", file=sys.stderr) as bar,
    ):
        for rows in checked:
            for row in map(job_result, rows):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                claims += len(row["check"]["claims"]) if "check" in row else 0
            out.flush()
            os.fsync(out.fileno())  # a batch written is a batch kept
            bar.update(len(rows))
            bar.set_postfix(claims_per_s=f"{claims / (time.perf_counter() - started):.1f}")
    seconds = time.perf_counter() - started
    # The summary is of the whole output: this run and the runs it resumed.
    tally = Tally()
    with args.out.open(encoding="utf-8") as lines:
        rows_out = [json.loads(line) for line in lines]
    for row in rows_out:
        tally.count(row)
    picture = args.out.with_suffix(".factuality.png")
    picture.write_bytes(tally.histogram())
    written = [str(picture)]
    if args.rank:
        written += _write_rankings(rows_out, args.out)
    summary = args.out.with_suffix(".summary.json")
    this_run = {
        "items": len(todo),
        "claims": claims,
        "workers": args.workers,
        "ray": args.ray,
        "seconds": round(seconds, 1),
        "claims_per_s": round(claims / seconds, 2) if seconds else None,
    }
    report = json.dumps({**tally.summary(), "this_run": this_run}, indent=2)
    summary.write_text(report + "\n", encoding="utf-8")
    print(report, file=sys.stderr)
    print(f"wrote {args.out}, {summary}, {', '.join(written)}", file=sys.stderr)
    return 0


def _checked(
    batches: Sequence[Sequence[Any]], workers: int, settings: Settings, top_k: int | None
) -> Iterator[list[dict[str, Any]]]:
    """The result rows of each batch, in order: here, or in ``workers`` processes (the
    models are loaded before this returns, here or in each process)."""
    from service import components

    checker = components.build(settings).checker  # also builds the default corpus once
    if workers == 1:
        return (_rows_of(checker, batch, top_k) for batch in batches)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    del checker
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_process,
        initargs=(settings, max(1, (os.cpu_count() or 1) // workers)),
    )
    # The processes start together (spawn); wait for their models before the clock starts.
    # A process that loads fast may take two of these, so this is a wait, not a guarantee.
    list(pool.map(_ready, range(workers)))
    return _closing(pool, pool.map(_check_in_process, batches, [top_k] * len(batches)))


def _closing(pool: Any, rows: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    with pool:
        yield from rows


def _rows_of(checker: Any, batch: Sequence[Any], top_k: int | None) -> list[dict[str, Any]]:
    from service.jobs import result_body

    return [
        result_body(item, found)
        for item, found in zip(batch, checker.check_many(batch, top_k), strict=True)
    ]


_PROCESS_CHECKER: Any = None


def _start_process(settings: Settings, threads: int) -> None:
    """A worker process: its share of the cores, and the models loaded once."""
    import torch

    from service import components

    global _PROCESS_CHECKER
    torch.set_num_threads(threads)
    _PROCESS_CHECKER = components.build(settings).checker


def _ready(_: int) -> bool:
    time.sleep(0.5)  # held long enough that the processes usually take one each
    return _PROCESS_CHECKER is not None


def _check_in_process(batch: Sequence[Any], top_k: int | None) -> list[dict[str, Any]]:
    return _rows_of(_PROCESS_CHECKER, batch, top_k)


def _write_rankings(rows: Sequence[dict[str, Any]], out: Path) -> list[str]:
    """Rank the checked responses to each prompt (two or more); write rankings and pairs."""
    from claims.aggregation import preference_pairs, rank, standing_of
    from claims.types import Label

    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if "check" in row and row["check"]["prompt"] and row["check"]["text"] is not None:
            by_prompt.setdefault(row["check"]["prompt"], []).append(row)
    rankings, pairs = out.with_suffix(".ranking.jsonl"), out.with_suffix(".pairs.jsonl")
    with (
        rankings.open("w", encoding="utf-8") as ranked_out,
        pairs.open("w", encoding="utf-8") as pairs_out,
    ):
        for prompt, group in by_prompt.items():
            if len(group) < 2:
                continue
            standings = [
                standing_of(
                    n,
                    [
                        (Label(c["verdict"]), c["confidence"])
                        for c in row["check"]["claims"]
                        if c["checkworthy"] and c["verdict"]
                    ],
                )
                for n, row in enumerate(group)
            ]
            ranked = rank(standings)
            entry = {
                "prompt": prompt,
                "ranked": [
                    {
                        "id": group[s.index]["id"],
                        "score": round(s.score, 4),
                        "supported": round(s.supported, 4),
                        "refuted": round(s.refuted, 4),
                        "unknown": round(s.unknown, 4),
                    }
                    for s in ranked
                ],
            }
            ranked_out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            for chosen, rejected, margin in preference_pairs(ranked):
                pair = {
                    "prompt": prompt,
                    "chosen": group[chosen.index]["check"]["text"],
                    "rejected": group[rejected.index]["check"]["text"],
                    "margin": round(margin, 4),
                    "chosen_id": group[chosen.index]["id"],
                    "rejected_id": group[rejected.index]["id"],
                }
                pairs_out.write(json.dumps(pair, ensure_ascii=False) + "\n")
    return [str(rankings), str(pairs)]
