"""The ``claimsieve`` command line: one module per command group, each adding its subparsers."""

from __future__ import annotations

import argparse
import logging
import sys

from service.cli import checks, corpus, keys, models, reviews, screen, serve
from service.settings import get_settings

GROUPS = (serve, checks, screen, corpus, reviews, models, keys)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="claimsieve", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add(commands)
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
