"""Sessions in Redis: fast, shared by every process that reaches the server, optionally expiring.

A conversation is two keys: ``<prefix><id>:items``, a list with one entry per item (the
same ``json.dumps(item.to_json())`` text the SQL tables hold), and ``<prefix><id>:meta``,
the ``SessionMeta`` JSON. Appends are one ``RPUSH`` inside a ``MULTI`` transaction, so
concurrent calls never interleave; ``RPOP`` pops atomically. With ``ttl_seconds`` every
write pushes both keys' expiry back. The ``redis`` package is optional
(``pip install 'agentrig[redis]'``) and imported only when a session is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agentrig.errors import ConfigError
from agentrig.items import Item
from agentrig.sessions.base import SessionMeta
from agentrig.sessions.memory import dump_item, dump_meta, load_item, load_meta

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "agentrig:session:"


def _redis_from_url(url: str) -> Redis:
    try:
        from redis.asyncio import Redis
    except ImportError as exc:
        raise ConfigError(
            "RedisSession needs the redis package: pip install 'agentrig[redis]'"
        ) from exc
    return Redis.from_url(url)


class RedisSession:
    """A session in Redis, at ``url`` or through a ``client`` the caller owns."""

    def __init__(
        self,
        session_id: str,
        url: str = DEFAULT_URL,
        *,
        client: Redis | None = None,
        key_prefix: str = DEFAULT_PREFIX,
        ttl_seconds: int | None = None,
    ) -> None:
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ConfigError(f"ttl_seconds must be positive, not {ttl_seconds}")
        self.session_id = session_id
        self.ttl_seconds = ttl_seconds
        self.items_key = f"{key_prefix}{self.session_id}:items"
        self.meta_key = f"{key_prefix}{self.session_id}:meta"
        self._owns_client = client is None
        self.client: Redis = client if client is not None else _redis_from_url(url)

    def _refresh_ttl(self, pipe: Pipeline) -> None:
        if self.ttl_seconds is not None:
            pipe.expire(self.items_key, self.ttl_seconds)
            pipe.expire(self.meta_key, self.ttl_seconds)

    async def get_items(self, limit: int | None = None) -> list[Item]:
        if limit is not None and limit <= 0:
            return []
        start = 0 if limit is None else -limit
        values: list[Any] = await self.client.lrange(self.items_key, start, -1)
        return [load_item(value) for value in values]

    async def add_items(self, items: Sequence[Item]) -> None:
        values = [dump_item(item) for item in items]
        if not values:
            return
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(self.items_key, *values)
            self._refresh_ttl(pipe)
            await pipe.execute()

    async def pop_item(self) -> Item | None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpop(self.items_key)
            self._refresh_ttl(pipe)
            value = (await pipe.execute())[0]
        return None if value is None else load_item(value)

    async def clear(self) -> None:
        await self.client.delete(self.items_key, self.meta_key)

    async def get_meta(self) -> SessionMeta:
        return load_meta(await self.client.get(self.meta_key))

    async def set_meta(self, meta: SessionMeta) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.meta_key, dump_meta(meta))
            self._refresh_ttl(pipe)
            await pipe.execute()

    async def aclose(self) -> None:
        """Close the connection pool, if this session created it."""
        if self._owns_client:
            await self.client.aclose()
