"""API keys for partner systems, kept hashed in the gateway's own store.

A key is 256 random bits, shown once when created; the store keeps only its SHA-256. A slow hash
(argon2, bcrypt) protects low-entropy passwords from guessing; a random 256-bit key cannot be
guessed, so a fast hash loses nothing and keeps every request's check under a millisecond. The
store is a SQLite file by default, PostgreSQL when its URL says so (SQLAlchemy async).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, String, Table, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store_engine import store_engine
from resolvers.access import Principal, Role

KEY_PREFIX = "cgk_"

_metadata = MetaData()
_keys = Table(
    "complaint_graph_api_keys",
    _metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("agency", String(100)),
    Column("roles", String(200), nullable=False),
    Column("scopes", String(1000), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What the store knows of a key: never the key itself."""

    id: str
    name: str
    agency: str | None
    roles: frozenset[Role]
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    def principal(self) -> Principal:
        return Principal(
            subject=f"key:{self.id}",
            roles=self.roles,
            agency=self.agency,
            scopes=self.scopes,
            method="api_key",
        )


class KeyStoreError(ValueError):
    """A key cannot be created or revoked as asked."""


class KeyStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None
        self._opening = asyncio.Lock()

    async def _ready(self) -> AsyncEngine:
        # One engine, however many first requests arrive together: without the lock each
        # made its own and all but the last were never disposed (their SQLite connections
        # leaked; the concurrent writes test, tests/gateway/test_writes.py, found it).
        async with self._opening:
            if self._engine is None:
                engine = store_engine(self.url)  # WAL: key checks never wait for a writer
                async with engine.begin() as connection:
                    await connection.run_sync(_metadata.create_all)
                self._engine = engine
            return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def create(
        self,
        name: str,
        roles: frozenset[Role],
        agency: str | None = None,
        scopes: frozenset[str] = frozenset(),
        key: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (returned only here). ``key`` fixes the secret: for the
        demo's published keys only; everything else gets 256 random bits."""
        if not roles:
            raise KeyStoreError("a key needs at least one role")
        if Role.AGENCY in roles and not agency:
            raise KeyStoreError("a key with role agency needs --agency")
        secret = key if key is not None else KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            id=secrets.token_hex(6),
            name=name,
            agency=agency,
            roles=roles,
            scopes=scopes,
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        engine = await self._ready()
        async with engine.begin() as connection:
            await connection.execute(
                _keys.insert().values(
                    id=record.id,
                    key_hash=key_hash(secret),
                    name=name,
                    agency=agency,
                    roles=",".join(sorted(roles)),
                    scopes=" ".join(sorted(scopes)),
                    created_at=record.created_at.isoformat(),
                )
            )
        return record, secret

    async def ensure(
        self,
        key: str,
        name: str,
        roles: frozenset[Role],
        agency: str | None = None,
        scopes: frozenset[str] = frozenset(),
    ) -> ApiKey:
        """The key with this exact secret, created unless the store holds it already (the
        demo seeds its published keys on every start)."""
        engine = await self._ready()
        async with engine.connect() as connection:
            row = (
                await connection.execute(select(_keys).where(_keys.c.key_hash == key_hash(key)))
            ).first()
        if row is not None:
            return _record(row._mapping)
        record, _ = await self.create(name, roles, agency, scopes, key=key)
        return record

    async def list(self) -> list[ApiKey]:
        engine = await self._ready()
        async with engine.connect() as connection:
            rows = (await connection.execute(select(_keys).order_by(_keys.c.created_at))).all()
        return [_record(row._mapping) for row in rows]

    async def revoke(self, key_id: str) -> ApiKey:
        engine = await self._ready()
        async with engine.begin() as connection:
            result = await connection.execute(
                update(_keys)
                .where(_keys.c.id == key_id, _keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC).isoformat())
            )
            if result.rowcount == 0:
                raise KeyStoreError(f"no active key with id {key_id!r}")
            row = (await connection.execute(select(_keys).where(_keys.c.id == key_id))).one()
        return _record(row._mapping)

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The active key ``presented`` is, or None (unknown or revoked)."""
        wanted = key_hash(presented)
        engine = await self._ready()
        async with engine.connect() as connection:
            row = (
                await connection.execute(select(_keys).where(_keys.c.key_hash == wanted))
            ).first()
        if row is None or not hmac.compare_digest(row.key_hash, wanted):
            return None
        record = _record(row._mapping)
        return record if record.revoked_at is None else None


def _record(values: RowMapping) -> ApiKey:
    return ApiKey(
        id=values["id"],
        name=values["name"],
        agency=values["agency"],
        roles=frozenset(Role(r) for r in values["roles"].split(",") if r),
        scopes=frozenset(values["scopes"].split()),
        created_at=datetime.fromisoformat(values["created_at"]),
        revoked_at=datetime.fromisoformat(values["revoked_at"]) if values["revoked_at"] else None,
    )
