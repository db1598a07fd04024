"""The in-process session, and the one serialization every session backend stores.

:class:`InMemorySession` keeps a conversation for the life of the process: tests, scripts
and one-shot runs. It stores exactly what the persistent backends store (each item as
``json.dumps(item.to_json())``, the metadata as the ``SessionMeta`` JSON), so returned items
are fresh objects that callers may mutate, and it behaves like SQL and Redis item for item.
The four helpers below are that shared format; the SQL and Redis backends use them too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from agentrig.items import Item, parse_item
from agentrig.sessions.base import SessionMeta


def dump_item(item: Item) -> str:
    """The stored form of one item: its Responses-API JSON object."""
    return json.dumps(item.to_json())


def load_item(data: str | bytes) -> Item:
    """The item back from :func:`dump_item`'s text."""
    return parse_item(json.loads(data))


def dump_meta(meta: SessionMeta) -> str:
    """The stored form of the metadata: ``{"current_agent": ..., "tool_state": {...}}``."""
    return json.dumps(meta.model_dump(mode="json"))


def load_meta(data: str | bytes | None) -> SessionMeta:
    """The metadata back from :func:`dump_meta`'s text (the defaults when never set)."""
    return SessionMeta() if data is None else SessionMeta.model_validate_json(data)


def last(values: list[str], limit: int | None) -> list[str]:
    """The last ``limit`` values (all of them when ``limit`` is ``None``, none when <= 0)."""
    if limit is None:
        return list(values)
    return values[-limit:] if limit > 0 else []


class InMemorySession:
    """A session in a Python list; gone when the process ends."""

    def __init__(self, session_id: str | None = None) -> None:
        self.session_id = session_id or uuid.uuid4().hex
        self._items: list[str] = []
        self._meta: str | None = None

    async def get_items(self, limit: int | None = None) -> list[Item]:
        return [load_item(data) for data in last(self._items, limit)]

    async def add_items(self, items: Sequence[Item]) -> None:
        # Serialize everything before appending: a bad item leaves the session unchanged,
        # and with no await in between, concurrent calls never interleave.
        self._items.extend([dump_item(item) for item in items])

    async def pop_item(self) -> Item | None:
        return load_item(self._items.pop()) if self._items else None

    async def clear(self) -> None:
        self._items.clear()
        self._meta = None

    async def get_meta(self) -> SessionMeta:
        return load_meta(self._meta)

    async def set_meta(self, meta: SessionMeta) -> None:
        self._meta = dump_meta(meta)

    async def aclose(self) -> None:
        """Nothing to close."""
