"""``claimsieve keys …`` and ``db upgrade``: API keys and the database."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.settings import Settings


def add(commands: Any) -> None:
    from service.auth import ROLES

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
