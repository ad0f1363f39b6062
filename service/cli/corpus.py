"""``claimsieve corpus …``: create, fill, inspect and search corpora.

What the database and the snapshot manifests can answer (list, create, show,
versions, documents) is answered without loading any model; the other
commands say a missing corpus or file before the models load.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from service.settings import Settings

Run = Callable[[argparse.Namespace, Settings], int]


def add(commands: Any) -> None:
    corpus = commands.add_parser("corpus", help="manage corpora")
    group = corpus.add_subparsers(dest="corpus_command", required=True)
    create = group.add_parser("create", help="create an empty corpus")
    create.add_argument("name")
    create.add_argument("--description", default="")
    create.set_defaults(run=_named(_create))
    added = group.add_parser(
        "add", help="add or replace documents from files or folders (creates the corpus)"
    )
    added.add_argument("name")
    added.add_argument(
        "paths",
        nargs="+",
        help=".jsonl/.ndjson ({id,title,text,metadata}), .txt, .md, .html, folders",
    )
    added.add_argument(
        "--include", action="append", default=[], help="glob of files to read in folders"
    )
    added.add_argument(
        "--exclude", action="append", default=[], help="glob of files to skip in folders"
    )
    added.set_defaults(run=_named(_add))
    delete = group.add_parser("delete-document", help="delete documents by id")
    delete.add_argument("name")
    delete.add_argument("ids", nargs="+")
    delete.set_defaults(run=_named(_existing(_delete)))
    group.add_parser("list", help="list corpora").set_defaults(run=_list)
    for name, text, run in (
        ("show", "show a corpus", _show),
        ("versions", "list a corpus's versions", _versions),
        ("documents", "list the live documents: id, title, characters, passages", _documents),
    ):
        shown = group.add_parser(name, help=text)
        shown.add_argument("name")
        shown.set_defaults(run=_named(_existing(run)))
    rebuild = group.add_parser(
        "rebuild", help="a new version without tombstones, indexes built afresh"
    )
    rebuild.add_argument("name")
    rebuild.add_argument(
        "--reembed",
        action="store_true",
        help="encode every document again (a corpus made by another embedder)",
    )
    rebuild.set_defaults(run=_named(_existing(_rebuild)))
    search = group.add_parser("search", help="search a corpus")
    search.add_argument("name")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "sparse"])
    search.set_defaults(run=_named(_existing(_search)))


def _named(run: Run) -> Run:
    """``run``, once the corpus name is one the service accepts."""

    def checked(args: argparse.Namespace, settings: Settings) -> int:
        from service.schemas import CORPUS_NAME

        if not re.fullmatch(CORPUS_NAME, args.name):
            print(
                f"error: corpus names use lower-case letters, digits, _ . - ({args.name!r})",
                file=sys.stderr,
            )
            return 2
        return run(args, settings)

    return checked


def _existing(run: Run) -> Run:
    """``run``, once the database says the corpus exists."""

    def checked(args: argparse.Namespace, settings: Settings) -> int:
        from service.store import corpora as corpus_store

        with _session(settings) as db:
            if corpus_store.get_corpus(db, args.name) is None:
                print(f"error: no corpus named {args.name!r}", file=sys.stderr)
                return 1
        return run(args, settings)

    return checked


def _session(settings: Settings) -> Session:
    from service import components

    _, sessions = components.open_database(settings)
    return sessions()


def _current(db: Session, name: str) -> Any:
    """The row of a corpus's current version (``None`` before its first documents)."""
    from service.store import corpora as corpus_store

    corpus = corpus_store.get_corpus(db, name)
    assert corpus is not None  # _existing checked
    return corpus_store.version_row(db, corpus, corpus.current_version)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from service.store import corpora as corpus_store

    with _session(settings) as db:
        for corpus in corpus_store.list_corpora(db):
            row = corpus_store.version_row(db, corpus, corpus.current_version)
            documents, passages = (row.documents, row.passages) if row else (0, 0)
            print(
                f"{corpus.name}\tv{corpus.current_version}\t{documents} documents\t"
                f"{passages} passages"
            )
    return 0


def _create(args: argparse.Namespace, settings: Settings) -> int:
    from service.store import corpora as corpus_store

    with _session(settings) as db:
        corpus_store.create_corpus(db, args.name, args.description)
    print(f"created corpus {args.name}")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    """One line about a corpus's current version, read from its snapshot's manifest."""
    from retrieval import snapshots

    with _session(settings) as db:
        row = _current(db, args.name)
    if row is None:
        print(f"{args.name} v0: no documents yet")
        return 0
    manifest = snapshots.read_manifest(settings.snapshot_dir / row.snapshot_path)
    print(
        f"{manifest.corpus} v{manifest.version}: {manifest.documents} documents, "
        f"{manifest.passages} passages, {manifest.rows - manifest.passages} tombstones, "
        f"{manifest.dense} dense index, BM25, chunk budget {manifest.chunk_tokens} "
        f"({manifest.chunk_overlap} overlap), embedder {manifest.embedder}"
    )
    return 0


def _documents(args: argparse.Namespace, settings: Settings) -> int:
    """The live documents of a corpus's current version, a line each, read from its snapshot."""
    from retrieval import snapshots

    with _session(settings) as db:
        row = _current(db, args.name)
    if row is not None:
        for d in snapshots.documents(settings.snapshot_dir / row.snapshot_path):
            print(f"{d.id}\t{d.title}\t{len(d.text)} chars\t{len(d.rows)} passages")
    return 0


def _versions(args: argparse.Namespace, settings: Settings) -> int:
    from service.store import corpora as corpus_store

    with _session(settings) as db:
        corpus = corpus_store.get_corpus(db, args.name)
        assert corpus is not None  # _existing checked
        for v in corpus_store.list_versions(db, corpus):
            mark = "  (current)" if v.version == corpus.current_version else ""
            print(
                f"v{v.version}\t{v.created_at:%Y-%m-%d %H:%M:%S}\t"
                f"{v.documents} documents\t{v.passages} passages{mark}"
            )
    return 0


def _built(settings: Settings) -> Any:
    from service import components

    return components.build(settings.model_copy(update={"build_default_corpus": False}))


def _print_change(result: Any) -> None:
    print(
        f"{result.corpus}: version {result.version}, {result.added} added, "
        f"{result.replaced} replaced, {result.unchanged} unchanged, {result.deleted} deleted; "
        f"{result.documents} documents, {result.passages} passages"
    )


def _add(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from retrieval.ingest import read_paths
    from service.errors import ConflictError
    from service.store import corpora as corpus_store

    for path in args.paths:
        if not Path(path).exists():
            print(f"error: {path}: no such file or folder", file=sys.stderr)
            return 1
    built = _built(settings)
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
            _print_change(built.checker.corpora.add_documents(args.name, stream, progress=True))
    except BaseException:
        if created:  # leave the store as it was: no half-made corpus
            with built.sessions() as db:
                corpus_store.delete_empty_corpus(db, args.name)
        raise
    return 0


def _delete(args: argparse.Namespace, settings: Settings) -> int:
    result = _built(settings).checker.corpora.delete_documents(args.name, args.ids)
    for missing in result.not_found:
        print(f"warning: {args.name} has no document {missing!r}", file=sys.stderr)
    _print_change(result)
    return 1 if result.not_found and not result.deleted else 0


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    corpora = _built(settings).checker.corpora
    _print_change(corpora.rebuild(args.name, progress=True, reembed=args.reembed))
    return 0


def _search(args: argparse.Namespace, settings: Settings) -> int:
    _, hits = _built(settings).checker.search(args.name, args.query, args.k, args.mode)
    if not hits:
        print(f"no passage of {args.name} matches", file=sys.stderr)
    for rank, hit in enumerate(hits, start=1):
        p = hit.passage
        print(f"{rank:>3}. {hit.score:.4f}  [{p.title}] {p.document_id} {p.start}-{p.end}")
        print("     " + textwrap.shorten(p.text, 150, placeholder=" …"))
    return 0
