"""API keys of the OpenAI-compatible server: each key belongs to one tenant.

A key is ``sk-agentrig-`` followed by 43 random URL-safe characters (256 bits from
:mod:`secrets`). It is shown once, when created; the table keeps only its SHA-256 (hex)
and a short prefix for display. A fast unsalted hash is enough here, unlike for
passwords: slow, salted hashes (bcrypt, argon2) exist to make guessing *low-entropy*
secrets expensive, and nobody can guess or brute-force a 256-bit random key from its
hash. A plain hash also makes a key findable by an index lookup on ``key_hash``.

Checking a key costs no constant-time comparison: the lookup is by hash, and learning
how much of a hash matches tells an attacker nothing about a key that produces it.

Verification is cheap on the request path: verified keys are cached in the process for
``cache_ttl`` seconds (a revocation takes up to that long to reach other processes), and
``last_used_at`` is written at most once a minute per key rather than on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, or_, select, update

from agentrig.items import new_id
from agentrig.store.db import Database
from agentrig.store.models import ApiKeyRow

KEY_PREFIX = "sk-agentrig-"
DISPLAY_CHARS = 8  # random characters kept after KEY_PREFIX, to tell keys apart in lists
LAST_USED_EVERY = timedelta(minutes=1)
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class ApiKeyRecord:
    """What is known about a key: never the key itself."""

    id: str
    tenant: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


ApiKeyRecords = list[ApiKeyRecord]


def hash_key(key: str) -> str:
    """The SHA-256 of ``key``, in hex: what the table stores."""
    return hashlib.sha256(key.encode()).hexdigest()


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked=row.revoked,
    )


class ApiKeyStore:
    """The ``api_keys`` table of a migrated :class:`Database`, with a small verify cache."""

    def __init__(self, database: Database, *, cache_ttl: float = 5.0) -> None:
        self.database = database
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, ApiKeyRecord]] = {}  # hash -> (expiry, record)

    async def create(self, name: str, tenant: str | None = None) -> tuple[str, ApiKeyRecord]:
        """A new key for ``tenant`` (a new tenant ``tnt_…`` if none): the key, shown only
        now, and its record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            id=new_id("key"),
            tenant=tenant or new_id("tnt"),
            name=name,
            prefix=key[: len(KEY_PREFIX) + DISPLAY_CHARS],
            created_at=datetime.now(UTC),
            last_used_at=None,
            revoked=False,
        )
        async with self.database.sessions.begin() as session:
            await session.execute(
                insert(ApiKeyRow).values(**asdict(record), key_hash=hash_key(key))
            )
        return key, record

    async def verify(self, key: str) -> ApiKeyRecord | None:
        """The record of ``key`` if it is a valid, unrevoked key; else ``None``."""
        if not key.startswith(KEY_PREFIX):
            return None
        digest, now = hash_key(key), time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.database.sessions() as session:
            row = await session.scalar(
                select(ApiKeyRow).where(ApiKeyRow.key_hash == digest, ApiKeyRow.revoked.is_(False))
            )
            if row is None:
                self._cache.pop(digest, None)
                return None
            record = _record(row)
            at = datetime.now(UTC)
            if record.last_used_at is None or at - record.last_used_at >= LAST_USED_EVERY:
                # Conditional, so that processes verifying together write it once.
                stale = or_(
                    ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at <= at - LAST_USED_EVERY
                )
                await session.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == record.id, stale)
                    .values(last_used_at=at)
                )
                await session.commit()
                record = replace(record, last_used_at=at)
        if self.cache_ttl > 0:
            if len(self._cache) >= _MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) < _MAX_CACHED:
                self._cache[digest] = (now + self.cache_ttl, record)
        return record

    async def list(self, tenant: str | None = None) -> ApiKeyRecords:
        """Every key (or ``tenant``'s keys), revoked ones included, oldest first."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if tenant is not None:
            query = query.where(ApiKeyRow.tenant == tenant)
        async with self.database.sessions() as session:
            return [_record(row) for row in (await session.scalars(query)).all()]

    async def revoke(self, key_id: str) -> bool:
        """Revoke the key ``key_id``; ``False`` if there is no such unrevoked key.

        This process forgets it at once; other processes within their ``cache_ttl``.
        """
        async with self.database.sessions.begin() as session:
            result = await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked.is_(False))
                .values(revoked=True)
            )
        self._cache = {k: v for k, v in self._cache.items() if v[1].id != key_id}
        return result.rowcount > 0

    async def count(self, *, include_revoked: bool = False) -> int:
        """How many keys there are (by default, unrevoked ones only)."""
        query = select(func.count()).select_from(ApiKeyRow)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked.is_(False))
        async with self.database.sessions() as session:
            return int(await session.scalar(query) or 0)
