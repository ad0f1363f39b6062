"""The ``claimsieve`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from service.settings import Settings, get_settings, is_loopback

log = logging.getLogger("claimsieve")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.app import create_app

    settings = settings.model_copy(
        update={
            "host": args.host or settings.host,
            "port": args.port or settings.port,
            "auth": settings.auth and not args.no_auth,
        }
    )
    if not settings.auth and not is_loopback(settings.host):
        print(
            f"error: --no-auth is allowed on a loopback host only, not {settings.host}",
            file=sys.stderr,
        )
        return 2
    if not settings.auth:
        log.warning("authentication is OFF (--no-auth): every caller acts as admin")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


def _claim_rows(check: dict[str, Any]) -> str:
    lines = []
    for number, claim in enumerate(check["claims"], start=1):
        verdict = claim["verdict"] or f"(not checked: {claim['checkworthy_reason']})"
        confidence = f"{claim['confidence']:.2f}" if claim["confidence"] is not None else "-"
        flag = "  FLAGGED" if claim["flagged"] else ""
        lines.append(f"{number:>3}. {claim['text']}")
        lines.append(f"     {verdict}  confidence {confidence}{flag}")
        if claim["evidence"]:
            best = claim["evidence"][0]
            sentence = best["text"][best["span"]["start"] : best["span"]["end"]]
            lines.append(
                f"     evidence [{best['title']}]: "
                + textwrap.shorten(sentence, 110, placeholder=" …")
            )
        for reason in claim["reasons"]:
            if reason["code"] not in ("aligned",):
                lines.append(f"     reason {reason['code']}: {reason['message']}")
    summary = check["summary"]
    factuality = summary["factuality"]
    lines.append("")
    lines.append(
        f"{summary['checkworthy']} checkworthy of {summary['claims']} claims; "
        f"flagged {summary['flagged']}; factuality "
        + (f"{factuality:.2f}" if factuality is not None else "n/a")
        + f"  (corpus {check['corpus']['name']} v{check['corpus']['version']})"
    )
    return "\n".join(lines)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from service import components
    from service.schemas import CheckOut
    from service.store import checks as check_store

    built = components.build(settings)
    with built.sessions() as db:
        result = built.checker.check(args.text, prompt=args.prompt, corpus=args.corpus, db=db)
        check = (
            CheckOut.from_result(result)
            if args.no_store
            else CheckOut.from_row(check_store.record(db, result, created_by="cli"))
        )
    out = check.model_dump(mode="json")
    print(json.dumps(out, indent=2, ensure_ascii=False) if args.json else _claim_rows(out))
    return 0


def _print_change(result: Any) -> None:
    print(
        f"{result.corpus}: version {result.version}, {result.added} added, "
        f"{result.replaced} replaced, {result.unchanged} unchanged, {result.deleted} deleted; "
        f"{result.documents} documents, {result.passages} passages"
    )


def _show(settings: Settings, name: str, row: Any) -> None:
    """One line about a corpus's current version, read from its snapshot's manifest."""
    from retrieval import snapshots

    if row is None:
        print(f"{name} v0: no documents yet")
        return
    m = snapshots.read_manifest(settings.snapshot_dir / row.snapshot_path)
    print(
        f"{m.corpus} v{m.version}: {m.documents} documents, {m.passages} passages, "
        f"{m.rows - m.passages} tombstones, {m.dense} dense index, BM25, "
        f"chunk budget {m.chunk_tokens} ({m.chunk_overlap} overlap), embedder {m.embedder}"
    )


def _documents(settings: Settings, row: Any) -> None:
    """The live documents of a corpus's current version, a line each, read from its snapshot."""
    from retrieval import snapshots

    if row is None:
        return
    for d in snapshots.documents(settings.snapshot_dir / row.snapshot_path):
        print(f"{d['id']}\t{d['title']}\t{len(d['text'])} chars\t{len(d['rows'])} passages")


def _corpus(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from retrieval.ingest import read_paths
    from service import components
    from service.errors import ConflictError
    from service.schemas import CORPUS_NAME
    from service.store import corpora as corpus_store

    command = args.corpus_command
    if command == "list":
        _, sessions = components.open_database(settings)
        with sessions() as db:
            for corpus in corpus_store.list_corpora(db):
                row = corpus_store.version_row(db, corpus, corpus.current_version)
                documents, passages = (row.documents, row.passages) if row else (0, 0)
                print(
                    f"{corpus.name}\tv{corpus.current_version}\t{documents} documents\t"
                    f"{passages} passages"
                )
        return 0
    if not re.fullmatch(CORPUS_NAME, args.name):
        print(
            f"error: corpus names use lower-case letters, digits, _ . - ({args.name!r})",
            file=sys.stderr,
        )
        return 2
    # What the database and the file system can answer is answered before any model loads.
    if command == "add":
        for path in args.paths:
            if not Path(path).exists():
                print(f"error: {path}: no such file or folder", file=sys.stderr)
                return 1
    else:
        _, sessions = components.open_database(settings)
        with sessions() as db:
            if command == "create":
                corpus_store.create_corpus(db, args.name, args.description)
                print(f"created corpus {args.name}")
                return 0
            found = corpus_store.get_corpus(db, args.name)
            if found is None:
                print(f"error: no corpus named {args.name!r}", file=sys.stderr)
                return 1
            row = corpus_store.version_row(db, found, found.current_version)
            if command == "show":
                _show(settings, args.name, row)
                return 0
            if command == "documents":
                _documents(settings, row)
                return 0
            if command == "versions":
                for v in corpus_store.list_versions(db, found):
                    mark = "  (current)" if v.version == found.current_version else ""
                    print(
                        f"v{v.version}\t{v.created_at:%Y-%m-%d %H:%M:%S}\t"
                        f"{v.documents} documents\t{v.passages} passages{mark}"
                    )
                return 0
    built = components.build(settings.model_copy(update={"build_default_corpus": False}))
    corpora = built.checker.corpora
    if command == "add":
        created = False
        with built.sessions() as db:
            try:
                corpus_store.create_corpus(db, args.name, "")
                created = True
            except ConflictError:
                pass
        # Streamed: a bad file stops the change before anything is recorded.
        stream = read_paths((Path(p) for p in args.paths), args.include, args.exclude)
        try:
            with logging_redirect_tqdm():  # warnings on their own lines, not inside the bar
                _print_change(corpora.add_documents(args.name, stream, progress=True))
        except BaseException:
            if created:  # leave the store as it was: no half-made corpus
                with built.sessions() as db:
                    corpus_store.delete_empty_corpus(db, args.name)
            raise
        return 0
    if command == "delete-document":
        result = corpora.delete_documents(args.name, args.ids)
        for missing in result.not_found:
            print(f"warning: {args.name} has no document {missing!r}", file=sys.stderr)
        _print_change(result)
        return 1 if result.not_found and not result.deleted else 0
    if command == "rebuild":
        _print_change(corpora.rebuild(args.name, progress=True, reembed=args.reembed))
        return 0
    _, hits = built.checker.search(args.name, args.query, args.k, args.mode)
    if not hits:
        print(f"no passage of {args.name} matches", file=sys.stderr)
    for rank, hit in enumerate(hits, start=1):
        p = hit.passage
        print(f"{rank:>3}. {hit.score:.4f}  [{p.title}] {p.document_id} {p.start}-{p.end}")
        print("     " + textwrap.shorten(p.text, 150, placeholder=" …"))
    return 0


def _claim_json(claim: Any) -> dict[str, Any]:
    return {
        "text": claim.text,
        "spans": [{"start": s.start, "end": s.end} for s in claim.spans],
        "checkworthy": claim.checkworthy,
        "reason": claim.reason,
    }


def _extract_rows(path: str, extractor: Any) -> int:
    """One output row per input row; a bad row is reported and skipped, the rest go on."""
    from tqdm import tqdm

    from claims.errors import ClaimsError

    source = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    failed = 0
    with source, tqdm(desc="extract", unit="response", file=sys.stderr) as bar:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("response"), str):
                    raise ValueError("a row needs a string 'response'")
                prompt = row.get("prompt")
                if prompt is not None and not isinstance(prompt, str):
                    raise ValueError("'prompt' must be a string")
                result = extractor.extract(row["response"], prompt=prompt)
            except (ValueError, ClaimsError) as exc:
                failed += 1
                message = exc.message if isinstance(exc, ClaimsError) else str(exc)
                print(f"error: {path}:{number}: {message}", file=sys.stderr)
                continue
            out: dict[str, Any] = {"id": row.get("id", number), "claims": []}
            out["claims"] = [_claim_json(c) for c in result.claims]
            if result.notices:
                out["warnings"] = [{"code": n.code, "message": n.message} for n in result.notices]
            print(json.dumps(out, ensure_ascii=False))
            bar.update()
    return 1 if failed else 0


def _extract(args: argparse.Namespace, settings: Settings) -> int:
    from claims.extraction import ParseExtractor
    from claims.nlp import load_spacy
    from service.components import make_extractor

    parse = ParseExtractor(load_spacy(settings.spacy_model), settings.max_text_chars)
    extractor = make_extractor(settings, parse)
    if args.jsonl:
        return _extract_rows(args.jsonl, extractor)
    if args.text is None:
        print("error: give a TEXT or --jsonl FILE", file=sys.stderr)
        return 2
    result = extractor.extract(args.text, prompt=args.prompt)
    if args.json:
        body = {
            "extractor": result.made_by,
            "claims": [_claim_json(c) for c in result.claims],
            "warnings": [{"code": n.code, "message": n.message} for n in result.notices],
        }
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    for notice in result.notices:
        print(f"warning ({notice.code}): {notice.message}", file=sys.stderr)
    for number, claim in enumerate(result.claims, start=1):
        where = ", ".join(f"{s.start}-{s.end}" for s in claim.spans)
        mark = "" if claim.checkworthy else f"   (not checked: {claim.reason})"
        print(f"{number:>3}. {claim.text}{mark}\n     [{where}] {claim.source_text!r}")
    return 0


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


def _models(settings: Settings) -> tuple[Any, Any]:
    from claims.nlp import load_spacy
    from retrieval.embedders import MiniLMEmbedder

    return MiniLMEmbedder(settings.embedder_path), load_spacy(settings.spacy_model)


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from claims.datasets import DataError
    from claims.extraction import ParseExtractor
    from service import components
    from service.evaluation import evaluate, summary_text

    for path in (args.claims, *args.corpus):
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return 1
    if args.builtin_corpus and (args.corpus or args.setting != "retrieval"):
        print(
            "error: --builtin-corpus is searched: use --setting retrieval, no --corpus",
            file=sys.stderr,
        )
        return 1
    if args.verifier:
        settings = settings.model_copy(update={"verifier": args.verifier})
    if args.head:
        settings = settings.model_copy(update={"verifier_head": args.head})
    embedder, nlp = _models(settings)
    verifier = components.make_verifier(settings, embedder, nlp)
    trained_on = getattr(getattr(verifier, "head", None), "card", {}).get("trained_on", {})
    if args.claims.parent.name in trained_on and args.part != "test":
        print(
            f"warning: the head was trained on part of {args.claims.parent.name}; "
            "use --part test for a figure on rows it never saw",
            file=sys.stderr,
        )
    extractor = components.make_extractor(settings, ParseExtractor(nlp, settings.max_text_chars))
    hallucinated_on = frozenset(
        label.strip().upper() for label in args.hallucinated_on.split(",") if label.strip()
    )
    try:
        report = evaluate(
            args.claims,
            args.corpus,
            args.out,
            verifier,
            extractor,
            embedder,
            setting=args.setting,
            part=args.part,
            top_k=args.top_k,
            hallucinated_on=hallucinated_on,
            limit=args.limit,
            builtin=args.builtin_corpus,
        )
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary_text(report))
    print(f"wrote {args.out}/predictions.jsonl, report.json, confusion.png, reliability.png")
    return 0


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from claims import cross
    from claims import head as heads
    from claims.datasets import DataError
    from claims.extraction import ParseExtractor
    from claims.features import FEATURES, FeatureExtractor
    from service import components, training

    if not (args.labelled or args.generate or args.generate_corpus or args.from_reviews):
        print(
            "error: give training data: --labelled DIR, --generate PATH, "
            "--generate-corpus NAME and/or --from-reviews",
            file=sys.stderr,
        )
        return 1
    base = None
    if args.base:
        base_path = components.default_head_path() if args.base == "default" else Path(args.base)
        try:
            base = heads.load(base_path, FEATURES)
        except heads.HeadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    embedder, nlp = _models(settings)
    examples: list[training.Example] = []
    try:
        for folder in args.labelled:
            found = training.labelled_examples(
                folder / "claims.jsonl",
                folder / "corpus.jsonl",
                ParseExtractor(nlp, settings.max_text_chars),
                part=args.part,
            )
            print(f"{folder}: {len(found)} labelled examples", file=sys.stderr)
            examples += found
    except (DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    passages = []
    if args.generate:
        from retrieval.ingest import read_paths

        passages += training.passages_of(read_paths(args.generate), settings.chunk_tokens, embedder)
    if args.generate_corpus:
        passages += _corpus_passages(settings, args.generate_corpus, embedder)
    if passages:
        try:
            made = training.generated_examples(passages, embedder, nlp, args.pairs, args.seed)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"generated {len(made)} pairs from {len(passages)} passages", file=sys.stderr)
        examples += made
    held: list[training.Example] = []
    if args.from_reviews:
        from service.store import reviews as review_store

        _, sessions = components.open_database(settings)
        with sessions() as db:
            found = training.review_examples(
                review_store.export_rows(db, corpus=args.review_corpus), args.review_weight
            )
        # A share of the reviews is kept out of the fit, to show what retraining changed.
        kept, held = training.hold_out(found) if len(found) >= 20 else (found, [])
        print(
            f"{len(found)} reviewed claims: {len(kept)} to train on, {len(held)} held out",
            file=sys.stderr,
        )
        examples += kept
    if not examples and base is None:
        print("error: the training data holds no examples", file=sys.stderr)
        return 1
    extractor = FeatureExtractor(embedder, nlp)
    x = training.featurize(examples, extractor)
    card = {
        "name": "features",
        "version": args.version,
        "base": str(args.base) if args.base else None,
    }
    try:
        head, report = training.fit(examples, x, base=base, seed=args.seed, card=card)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    head.save(args.out)
    base_cross = cross.load(base_path) if args.base else None
    new_cross = base_cross
    if base_cross is not None:
        # The base's cross-encoder head was trained beside it: its classifier is refitted
        # on the new human labels (reviews, labelled sets), its encoder carried along.
        new_cross = training.adapt_cross(base_cross, examples, embedder)
        if new_cross is not base_cross:  # a changed head gets the new version (checks record it)
            new_cross.card["version"] = args.version
        new_cross.save(args.out)
        adapted = new_cross.card.get("adapted", [])
        print(
            f"cross-encoder head from {base_path}"
            + (
                f", classifier refitted on {adapted[-1]['pairs']} pairs "
                f"(strength {adapted[-1]['strength']})"
                if new_cross is not base_cross
                else ""
            ),
            file=sys.stderr,
        )
    if held:
        x_held = training.featurize(held, extractor, progress=False)
        labels = [e.label for e in held]
        mixes: tuple[Any, Any] = (None, None)
        if base_cross is not None and new_cross is not None:
            # One forward pass; the two classifiers read the same pooled vectors.
            pooled = base_cross.pooled(training.cross_pairs(held, embedder))
            mixes = (
                (base_cross.classify(pooled), *base_cross.mix),
                (new_cross.classify(pooled), *new_cross.mix),
            )
        before = training.score(base, x_held, labels, mixes[0]) if base is not None else None
        after = training.score(head, x_held, labels, mixes[1])

        def shown(figures: dict[str, float | None]) -> str:
            return " ".join(f"{k} {v:.4f}" for k, v in figures.items() if v is not None)

        print(
            f"on {len(held)} held-out reviews: "
            + (f"base {shown(before)} -> new {shown(after)}" if before else f"new {shown(after)}")
        )
    elif args.from_reviews:
        print("fewer than 20 reviews: none held out, so no before/after figure")
    ece = (
        f"; ECE on {report.held_out} held-out rows {report.ece_before:.4f} -> "
        f"{report.ece_after:.4f} ({report.calibration})"
        if report.ece_before is not None and report.ece_after is not None
        else ""
    )
    print(f"head {args.version} trained on {head.card['rows']} rows {report.label_counts}{ece}")
    print(f"saved {args.out}; use it with CLAIMSIEVE_VERIFIER_HEAD={args.out}")
    return 0


def _corpus_passages(settings: Settings, name: str, embedder: Any) -> list[Any]:
    """The live documents of a service corpus, cut into passages."""
    from retrieval import snapshots
    from retrieval.types import Document
    from service import components
    from service.errors import NotFoundError
    from service.store import corpora as corpus_store

    _, sessions = components.open_database(settings)
    with sessions() as db:
        corpus = corpus_store.get_corpus(db, name)
        if corpus is None:
            raise NotFoundError(f"no corpus named {name!r}")
        version = corpus_store.version_row(db, corpus, corpus.current_version)
        folder = settings.snapshot_dir / version.snapshot_path if version else None
    if folder is None:
        raise NotFoundError(f"corpus {name!r} has no documents yet")
    from service.training import passages_of

    snapshot = snapshots.load(folder)
    documents = (
        Document(row["id"], row.get("title") or row["id"], row["text"])
        for row in snapshots.documents(snapshot)
    )
    return passages_of(documents, settings.chunk_tokens, embedder)


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from service.store import db as store_db

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store_db.upgrade(settings.resolved_database_url)
    print("database is at the latest revision", file=sys.stderr)
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from service import components
    from service.store import keys as key_store

    _, sessions = components.open_database(settings)
    with sessions() as db:
        if args.keys_command == "create":
            _, plaintext = key_store.create_key(db, args.name, args.role)
            print(plaintext)
        elif args.keys_command == "list":
            for key in key_store.list_keys(db):
                state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                print(f"{key.id}\t{key.role}\t{key.name}\t{key.prefix}…\t{state}")
        else:
            key = key_store.revoke_key(db, args.id)
            print(f"revoked key {key.id} ({key.name})", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    from service.auth import ROLES

    top = argparse.ArgumentParser(prog="claimsieve", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--no-auth", action="store_true", help="no API keys; allowed on a loopback host only"
    )
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check", help="check a text and print the verdicts")
    check.add_argument("text")
    check.add_argument("--prompt")
    check.add_argument("--corpus")
    check.add_argument("--json", action="store_true", help="print the API's JSON")
    check.add_argument("--no-store", action="store_true", help="do not keep the check")
    check.set_defaults(run=_check)

    extract = commands.add_parser(
        "extract", help="split a text into claims with spans (no corpus, no verdicts)"
    )
    extract.add_argument("text", nargs="?", help="the response text")
    extract.add_argument("--prompt", help="the prompt the text answers (antecedents)")
    extract.add_argument("--json", action="store_true", help="print JSON")
    extract.add_argument(
        "--jsonl",
        metavar="IN.jsonl",
        help='rows {"id", "response", "prompt"?} ("-" for stdin); one JSON row out per row in',
    )
    extract.set_defaults(run=_extract)

    corpus = commands.add_parser("corpus", help="manage corpora")
    corpus_commands = corpus.add_subparsers(dest="corpus_command", required=True)
    create_corpus = corpus_commands.add_parser("create", help="create an empty corpus")
    create_corpus.add_argument("name")
    create_corpus.add_argument("--description", default="")
    add = corpus_commands.add_parser(
        "add", help="add or replace documents from files or folders (creates the corpus)"
    )
    add.add_argument("name")
    add.add_argument(
        "paths",
        nargs="+",
        help=".jsonl/.ndjson ({id,title,text,metadata}), .txt, .md, .html, folders",
    )
    add.add_argument(
        "--include", action="append", default=[], help="glob of files to read in folders"
    )
    add.add_argument(
        "--exclude", action="append", default=[], help="glob of files to skip in folders"
    )
    delete = corpus_commands.add_parser("delete-document", help="delete documents by id")
    delete.add_argument("name")
    delete.add_argument("ids", nargs="+")
    corpus_commands.add_parser("list", help="list corpora")
    for name, text in (
        ("show", "show a corpus"),
        ("versions", "list a corpus's versions"),
        ("documents", "list the live documents: id, title, characters, passages"),
    ):
        corpus_commands.add_parser(name, help=text).add_argument("name")
    rebuild = corpus_commands.add_parser(
        "rebuild", help="a new version without tombstones, indexes built afresh"
    )
    rebuild.add_argument("name")
    rebuild.add_argument(
        "--reembed",
        action="store_true",
        help="encode every document again (a corpus made by another embedder)",
    )
    search = corpus_commands.add_parser("search", help="search a corpus")
    search.add_argument("name")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "sparse"])
    corpus.set_defaults(run=_corpus)

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

    evaluate = commands.add_parser(
        "eval", help="score a verifier on a labelled set (the shape of ../shared/eval)"
    )
    evaluate.add_argument("--claims", type=Path, required=True, help="labelled rows (JSONL)")
    evaluate.add_argument(
        "--corpus",
        type=Path,
        nargs="+",
        default=[],
        help="passages (JSONL), one file or several; not needed for inference pairs",
    )
    evaluate.add_argument(
        "--builtin-corpus",
        action="store_true",
        help="search the built-in Python reference instead (retrieval setting)",
    )
    evaluate.add_argument("--setting", choices=["gold", "retrieval"], default="gold")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for the report")
    evaluate.add_argument(
        "--verifier", choices=["features", "similarity-rules", "nli", "llm"], default=None
    )
    evaluate.add_argument("--head", type=Path, default=None, help="a head folder (features)")
    evaluate.add_argument(
        "--part",
        choices=["all", "train", "test"],
        default="all",
        help="one half of the fixed split (the shipped head never saw the test halves)",
    )
    evaluate.add_argument("--top-k", type=int, default=5, help="passages per claim (retrieval)")
    evaluate.add_argument(
        "--hallucinated-on",
        default="REFUTED,NOT_ENOUGH_INFO",
        help="claim labels that make a response HALLUCINATED",
    )
    evaluate.add_argument("--limit", type=int, default=None, help="only the first N rows")
    evaluate.set_defaults(run=_eval)

    train = commands.add_parser("train", help="train a verifier head")
    train.add_argument("--out", type=Path, required=True, help="folder for the new head")
    train.add_argument(
        "--labelled",
        type=Path,
        action="append",
        default=[],
        help="a folder with claims.jsonl and corpus.jsonl (repeatable)",
    )
    train.add_argument("--part", choices=["all", "train", "test"], default="all")
    train.add_argument(
        "--generate", type=Path, nargs="+", default=[], help="files or folders to make pairs from"
    )
    train.add_argument("--generate-corpus", help="make pairs from a service corpus")
    train.add_argument("--pairs", type=int, default=3000, help="pairs to generate")
    train.add_argument(
        "--from-reviews", action="store_true", help="add trainer reviews from the database"
    )
    train.add_argument("--review-corpus", default=None, help="only reviews of this corpus")
    train.add_argument("--review-weight", type=float, default=5.0)
    train.add_argument(
        "--base", default=None, help="'default' or a head folder whose training rows are kept"
    )
    train.add_argument("--version", default="custom-1", help="the new head's version")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_train)

    db = commands.add_parser("db", help="database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="migrate the database to the latest revision")
    db.set_defaults(run=_db)

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who acts with the key")
    key_commands.add_parser("list", help="list keys")
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id", type=int)
    keys.set_defaults(run=_keys)
    return top


def main(argv: list[str] | None = None) -> int:
    from claims.errors import ClaimsError
    from retrieval.errors import RetrievalError
    from service.errors import ServiceError

    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    for noisy in ("alembic", "faiss.loader", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        code: int = args.run(args, get_settings())
    except (ClaimsError, RetrievalError, ServiceError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
