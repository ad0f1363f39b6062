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
    create.add_argument("--expires-in-days", type=float, help="the key stops working then")
    key_commands.add_parser("list", help="list keys")
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id", type=int)
    rotate = key_commands.add_parser(
        "rotate", help="print a new key for the same name and role; the old one expires later"
    )
    rotate.add_argument("id", type=int)
    rotate.add_argument(
        "--grace-hours", type=float, default=24.0, help="how long the old key keeps working"
    )
    keys.set_defaults(run=_keys)


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from service.store import db as store_db

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store_db.upgrade(settings.resolved_database_url)
    print("database is at the latest revision", file=sys.stderr)
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    import getpass
    from datetime import timedelta

    from service import components
    from service.store import audit
    from service.store import keys as key_store
    from service.store.models import utcnow

    _, sessions = components.open_database(settings)
    actor = f"cli:{getpass.getuser()}"
    with sessions() as db:
        if args.keys_command == "create":
            days = args.expires_in_days
            expires = None if days is None else utcnow() + timedelta(days=days)
            key, plaintext = key_store.create_key(db, args.name, args.role, expires)
            audit.record(db, actor, "key.create", f"key {key.id}", {"name": key.name})
            print(plaintext)
        elif args.keys_command == "list":
            now = utcnow()
            for key in key_store.list_keys(db):
                state = "active"
                if key.revoked_at:
                    state = f"revoked {key.revoked_at:%Y-%m-%d}"
                elif key.expires_at:
                    verb = "expired" if key.expires_at <= now else "expires"
                    state = f"{verb} {key.expires_at:%Y-%m-%d %H:%M}"
                print(f"{key.id}\t{key.role}\t{key.name}\t{key.prefix}…\t{state}")
        elif args.keys_command == "rotate":
            grace = timedelta(hours=args.grace_hours)
            old, new, plaintext = key_store.rotate_key(db, args.id, grace)
            audit.record(db, actor, "key.rotate", f"key {old.id}", {"new_key": new.id})
            print(f"key {old.id} works until {old.expires_at:%Y-%m-%d %H:%M} UTC", file=sys.stderr)
            print(plaintext)
        else:
            key = key_store.revoke_key(db, args.id)
            audit.record(db, actor, "key.revoke", f"key {key.id}", {"name": key.name})
            print(f"revoked key {key.id} ({key.name})", file=sys.stderr)
    return 0
