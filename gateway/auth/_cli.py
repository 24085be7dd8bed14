"""``complaint-graph keys create|list|revoke``: API keys in the configured key store."""

from __future__ import annotations

import argparse
import asyncio

from gateway.auth._keys import ApiKey, KeyStore, KeyStoreError
from resolvers.access import Role


def add_keys_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--config", required=True)
    create.add_argument("--name", required=True, help="who the key is for, e.g. a partner system")
    create.add_argument(
        "--role", action="append", required=True, choices=[r.value for r in Role], dest="roles"
    )
    create.add_argument("--agency", help="agency code (needed for role agency)")
    create.add_argument("--scope", action="append", default=[], dest="scopes", help="e.g. pii:read")
    listing = actions.add_parser("list", help="every key: id, name, roles, created, revoked")
    listing.add_argument("--config", required=True)
    revoke = actions.add_parser("revoke", help="revoke a key by its id; takes effect at once")
    revoke.add_argument("key_id")
    revoke.add_argument("--config", required=True)


def run_keys(args: argparse.Namespace, key_store: str) -> int:
    return asyncio.run(_run(args, KeyStore(key_store)))


async def _run(args: argparse.Namespace, store: KeyStore) -> int:
    try:
        if args.keys_command == "create":
            record, secret = await store.create(
                args.name,
                frozenset(Role(r) for r in args.roles),
                args.agency,
                frozenset(args.scopes),
            )
            print(f"{record.id}  {_describe(record)}")
            print(f"key (shown only now, store it safely): {secret}")
        elif args.keys_command == "list":
            for record in await store.list():
                revoked = (
                    f"  revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else ""
                )
                print(f"{record.id}  {_describe(record)}{revoked}")
        else:
            record = await store.revoke(args.key_id)
            print(f"{record.id}  revoked")
        return 0
    except KeyStoreError as exc:
        print(exc)
        return 1
    finally:
        await store.close()


def _describe(record: ApiKey) -> str:
    parts = [
        record.name,
        "roles=" + ",".join(sorted(record.roles)),
        f"agency={record.agency}" if record.agency else "",
        "scopes=" + " ".join(sorted(record.scopes)) if record.scopes else "",
        f"created {record.created_at:%Y-%m-%d %H:%M}",
    ]
    return "  ".join(p for p in parts if p)
