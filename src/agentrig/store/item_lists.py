"""Ordered lists of stored items: what responses and conversations are made of.

An item is stored once (table ``items``, keyed by tenant and wire id); a response's
``input`` and ``output`` and a conversation's items are ordered lists of item ids
(table ``item_lists``). These are the queries both kinds of owner share: load a list's
items, append to a list, page through one with OpenAI's cursors, and unlist items
(deleting those no list names any more).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentrig.items import Item, new_id, parse_item
from agentrig.store.models import ConversationRow, ItemListRow, ResponseRow, StoredItemRow

Order = Literal["asc", "desc"]
ID_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}
RESPONSE_LISTS = ("input", "output")  # the kinds of a response's lists, in history order
CONVERSATION = "conversation"  # the kind of a conversation's list
_IDS_PER_STATEMENT = 500
_L = ItemListRow
OwnerTable = type[ResponseRow] | type[ConversationRow]


@dataclass
class Page:
    """One page of a list, with OpenAI's cursor fields (``after=last_id`` is the next page)."""

    data: list[Item]
    first_id: str | None
    last_id: str | None
    has_more: bool

    def to_json(self) -> dict[str, Any]:
        data = [item.to_json() for item in self.data]
        return {"object": "list", "data": data, "first_id": self.first_id} | {
            "last_id": self.last_id,
            "has_more": self.has_more,
        }


def with_ids(items: Iterable[Item]) -> list[Item]:
    """``items``, copied with a fresh id (``msg_…``, ``fc_…``, …) where none is set."""
    return [
        item if item.id else item.model_copy(update={"id": new_id(ID_PREFIXES[item.type])})
        for item in items
    ]


def list_of(owner_id: str, kind: str) -> tuple[ColumnElement[bool], ...]:
    """The rows of the list ``kind`` of ``owner_id``."""
    return (_L.owner_id == owner_id, _L.kind == kind)


def items_of(*where: ColumnElement[bool]) -> Select[tuple[str]]:
    """The stored JSON of the items that the list rows matching ``where`` name."""
    on = and_(StoredItemRow.tenant == _L.tenant, StoredItemRow.id == _L.item_id)
    return select(StoredItemRow.json).join(_L, on).where(*where)


async def load_items(connection: AsyncConnection, query: Select[tuple[str]]) -> list[Item]:
    return [parse_item(json.loads(row)) for row in (await connection.scalars(query)).all()]


async def owned(
    connection: AsyncConnection, table: OwnerTable, tenant: str, object_id: str
) -> bool:
    """Whether the response or conversation ``object_id`` exists and is ``tenant``'s."""
    query = select(table.id).where(table.id == object_id, table.tenant == tenant)
    return await connection.scalar(query) is not None


async def append_to_list(
    connection: AsyncConnection, tenant: str, owner: str, kind: str, start: int, items: list[Item]
) -> None:
    """List ``items`` at positions ``start``, ``start + 1``, … of the list ``kind`` of ``owner``."""
    key = {"owner_id": owner, "kind": kind, "tenant": tenant}
    rows = [key | {"position": start + n, "item_id": item.id} for n, item in enumerate(items)]
    if rows:
        await connection.execute(insert(_L), rows)


async def unlist(connection: AsyncConnection, tenant: str, *where: Any) -> set[str]:
    """Delete the tenant's list rows matching ``where``, then the items no list names any more."""
    removed = delete(_L).where(_L.tenant == tenant, *where).returning(_L.item_id)
    ids = set((await connection.scalars(removed)).all())
    unique = sorted(ids)
    listed = exists().where(_L.tenant == tenant, _L.item_id == StoredItemRow.id)
    for start in range(0, len(unique), _IDS_PER_STATEMENT):
        chunk = unique[start : start + _IDS_PER_STATEMENT]
        await connection.execute(
            delete(StoredItemRow).where(
                StoredItemRow.tenant == tenant, StoredItemRow.id.in_(chunk), ~listed
            )
        )
    return ids


async def page_of(
    connection: AsyncConnection,
    owner: tuple[ColumnElement[bool], ...],
    after: str | None,
    limit: int,
    order: Order,
) -> Page:
    """OpenAI's cursor pagination: ``limit`` items after the item ``after``, by position."""
    if limit < 1 or order not in ("asc", "desc"):
        raise ValueError(f"need limit >= 1 and order 'asc' or 'desc', not {limit}, {order!r}")
    query = items_of(*owner)
    if after is not None:
        cursor = await connection.scalar(
            select(func.min(_L.position)).where(*owner, _L.item_id == after)
        )
        if cursor is None:
            raise ValueError(f"after: no item {after!r} in this list")
        query = query.where(_L.position > cursor if order == "asc" else _L.position < cursor)
    ordering = _L.position.asc() if order == "asc" else _L.position.desc()
    items = await load_items(connection, query.order_by(ordering).limit(limit + 1))
    data = items[:limit]
    first, last = (data[0].id, data[-1].id) if data else (None, None)
    return Page(data=data, first_id=first, last_id=last, has_more=len(items) > limit)


def item_rows(tenant: str, items: Sequence[Item], now: datetime) -> list[dict[str, Any]]:
    """The ``items`` table rows of ``items`` (their ids set) for ``tenant``."""
    return [
        {
            "tenant": tenant,
            "id": item.id,
            "type": item.type,
            "json": json.dumps(item.to_json()),
            "created_at": now,
        }
        for item in items
    ]


def new_items_insert(dialect_insert: Any, rows: Sequence[dict[str, Any]]) -> tuple[Any, list]:
    """The statement and parameters that insert item rows, keeping the items a tenant
    already has under the same ids (items are immutable).

    Sorted by key, so that two transactions inserting the same ids lock them in one order.
    """
    unique = {(row["tenant"], row["id"]): row for row in reversed(rows)}  # the first wins
    statement = dialect_insert(StoredItemRow).on_conflict_do_nothing(
        index_elements=["tenant", "id"]
    )
    return statement, [unique[key] for key in sorted(unique)]


async def insert_items(
    connection: AsyncConnection, dialect_insert: Any, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert item rows (see :func:`new_items_insert`)."""
    if rows:
        await connection.execute(*new_items_insert(dialect_insert, rows))
