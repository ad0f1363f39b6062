"""``claimsieve eval`` and ``train``: score a verifier on a labelled set, fit a head."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from service.settings import Settings


def add(commands: Any) -> None:
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


def _models(settings: Settings) -> tuple[Any, Any]:
    from claims.nlp import load_spacy
    from retrieval.embedders import MiniLMEmbedder

    embedder = MiniLMEmbedder(settings.embedder_path, runtime=settings.runtime)
    return embedder, load_spacy(settings.spacy_model)


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from claims.datasets import DataError
    from claims.evaluation import evaluate, summary_text
    from claims.extraction import ParseExtractor
    from service import components

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
    from claims import cross, training
    from claims import head as heads
    from claims.features import FEATURES, FeatureExtractor
    from service import components

    if not (args.labelled or args.generate or args.generate_corpus or args.from_reviews):
        print(
            "error: give training data: --labelled DIR, --generate PATH, "
            "--generate-corpus NAME and/or --from-reviews",
            file=sys.stderr,
        )
        return 1
    base, base_cross = None, None
    if args.base:
        base_path = components.default_head_path() if args.base == "default" else Path(args.base)
        try:
            base = heads.load(base_path, FEATURES)
        except heads.HeadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        base_cross = cross.load(base_path)
    embedder, nlp = _models(settings)
    found = _examples(args, settings, embedder, nlp)
    if found is None:
        return 1
    examples, held = found
    if not examples and base is None:
        print("error: the training data holds no examples", file=sys.stderr)
        return 1
    card = {
        "name": "features",
        "version": args.version,
        "base": str(args.base) if args.base else None,
    }
    try:
        trained = training.train_head(
            examples,
            FeatureExtractor(embedder, nlp),
            embedder,
            card,
            base,
            base_cross,
            held,
            args.seed,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    trained.save(args.out)
    _report(args, trained, base_cross is not None)
    return 0


def _examples(
    args: argparse.Namespace, settings: Settings, embedder: Any, nlp: Any
) -> tuple[list[Any], list[Any]] | None:
    """The examples to train on and the reviews held out; ``None`` after an error is said."""
    from claims import training
    from claims.datasets import DataError
    from claims.extraction import ParseExtractor

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
        return None
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
            return None
        print(f"generated {len(made)} pairs from {len(passages)} passages", file=sys.stderr)
        examples += made
    held: list[training.Example] = []
    if args.from_reviews:
        from service import components
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
    return examples, held


def _report(args: argparse.Namespace, trained: Any, had_cross: bool) -> None:
    if had_cross:
        adapted = trained.cross.card.get("adapted", [])
        print(
            f"cross-encoder head from {args.base}"
            + (
                f", classifier refitted on {adapted[-1]['pairs']} pairs "
                f"(strength {adapted[-1]['strength']})"
                if trained.adapted
                else ""
            ),
            file=sys.stderr,
        )

    def shown(figures: dict[str, float | None]) -> str:
        return " ".join(f"{k} {v:.4f}" for k, v in figures.items() if v is not None)

    if trained.held_out is not None:
        before, after = trained.held_out["before"], trained.held_out["after"]
        print(
            f"on {trained.held} held-out reviews: "
            + (f"base {shown(before)} -> new {shown(after)}" if before else f"new {shown(after)}")
        )
    elif args.from_reviews:
        print("fewer than 20 reviews: none held out, so no before/after figure")
    report = trained.report
    ece = (
        f"; ECE on {report.held_out} held-out rows {report.ece_before:.4f} -> "
        f"{report.ece_after:.4f} ({report.calibration})"
        if report.ece_before is not None and report.ece_after is not None
        else ""
    )
    head = trained.head
    print(f"head {args.version} trained on {head.card['rows']} rows {report.label_counts}{ece}")
    print(f"saved {args.out}; use it with CLAIMSIEVE_VERIFIER_HEAD={args.out}")


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
    from claims.training import passages_of

    snapshot = snapshots.load(folder)
    documents = (Document(d.id, d.title or d.id, d.text) for d in snapshots.documents(snapshot))
    return passages_of(documents, settings.chunk_tokens, embedder)
