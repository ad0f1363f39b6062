"""The ``claimsieve`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import textwrap
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
    outcome = built.checker.check(args.text, prompt=args.prompt, corpus=args.corpus)
    with built.sessions() as db:
        check = check_store.record(db, outcome, created_by="cli", store=not args.no_store)
    out = CheckOut.from_row(check, stored=not args.no_store).model_dump(mode="json")
    print(json.dumps(out, indent=2, ensure_ascii=False) if args.json else _claim_rows(out))
    return 0


def _corpus(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.ingest import read_paths
    from service import components
    from service.errors import ConflictError
    from service.schemas import CORPUS_NAME
    from service.store import corpora as corpus_store

    if args.corpus_command == "list":
        _, sessions = components.open_database(settings)
        with sessions() as db:
            for corpus in corpus_store.list_corpora(db):
                row = corpus_store.version_row(db, corpus, corpus.current_version)
                passages = row.passages if row else 0
                print(
                    f"{corpus.name}\tv{corpus.current_version}\t"
                    f"{corpus_store.live_document_count(db, corpus)} documents\t"
                    f"{passages} passages"
                )
        return 0
    if not re.fullmatch(CORPUS_NAME, args.name):
        print(
            f"error: corpus names use lower-case letters, digits, _ . - ({args.name!r})",
            file=sys.stderr,
        )
        return 2
    # Read everything first: a bad file must leave the store as it was.
    documents = list(read_paths(Path(p) for p in args.paths))
    if not documents:
        print("error: no documents found in " + " ".join(args.paths), file=sys.stderr)
        return 1
    print(f"read {len(documents)} documents", file=sys.stderr)
    built = components.build(settings.model_copy(update={"build_default_corpus": False}))
    with built.sessions() as db:
        try:
            corpus_store.create_corpus(db, args.name)
        except ConflictError:
            pass  # adding to an existing corpus
    result = built.checker.corpora.add_documents(args.name, documents)
    print(
        f"{result.corpus}: version {result.version}, {result.added} added, "
        f"{result.replaced} replaced, {result.unchanged} unchanged, "
        f"{result.passages} passages"
    )
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
    add = corpus_commands.add_parser("add", help="add files or folders to a corpus (creates it)")
    add.add_argument("name")
    add.add_argument(
        "paths", nargs="+", help=".jsonl/.ndjson ({id,title,text}), .txt, .md, folders"
    )
    corpus_commands.add_parser("list", help="list corpora")
    corpus.set_defaults(run=_corpus)

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
