"""Stored responses and conversations of the OpenAI-compatible server.

An item is stored once (table ``items``, keyed by tenant and wire id); a response and a
conversation hold ordered lists of item ids (table ``item_lists``: a response's ``input``
and ``output``, a conversation's items), so a long conversation is not copied at every
turn: a turn adds its own items and their list rows, not the items before it.
``history`` follows ``previous_response_id`` with a recursive CTE and loads the whole
chain's items in one query.

Every row carries the tenant of the API key that wrote it and every read filters on it:
another tenant's object reads as missing (``None``, ``False``), which the server answers
with 404. Item ids are unique per tenant only, so a client-chosen id cannot collide with
another tenant's item.

Items are immutable: saving an id already stored for the tenant keeps the stored item.
When a response, a conversation or a conversation item is deleted, the items that no list
references any more are deleted with it.

Appends to one conversation take turns: the ``UPDATE … RETURNING`` of its
``next_position`` locks the conversation's row until commit on PostgreSQL (as ``SELECT …
FOR UPDATE`` would) and takes SQLite's write lock, so the items of one call get
contiguous positions and no two calls get the same one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy import literal_column as sql_literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from agentrig.errors import ConfigError
from agentrig.items import Item, new_id
from agentrig.store.db import Database
from agentrig.store.group_commit import GroupCommit
from agentrig.store.item_lists import (
    CONVERSATION,
    RESPONSE_LISTS,
    Order,
    OwnerTable,
    Page,
    append_to_list,
    insert_items,
    item_rows,
    items_of,
    list_of,
    load_items,
    owned,
    page_of,
    unlist,
    with_ids,
)
from agentrig.store.models import ConversationRow, ItemListRow, ResponseRow
from agentrig.store.new_responses import NewResponse, StoredResponse, write_new_responses

__all__ = ["NewResponse", "Page", "ResponseStore", "StoredResponse", "with_ids"]
_L = ItemListRow
T = TypeVar("T")

_MAX_CHAIN = 100_000  # a guard against a cycle of previous_response_id, never reached


def _now() -> datetime:
    return datetime.now(UTC)


def _conversation(conversation_id: str, created_at: datetime, meta: str | dict) -> dict[str, Any]:
    return {
        "id": conversation_id,
        "object": "conversation",
        "created_at": int(created_at.timestamp()),
        "metadata": json.loads(meta) if isinstance(meta, str) else meta,
    }


class ResponseStore:
    """Responses, conversations and their items in a migrated :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        dialect = database.engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ConfigError(f"the response store supports SQLite and PostgreSQL, not {dialect}")
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._new_responses: GroupCommit[NewResponse, StoredResponse] = GroupCommit(
            self._write_new_responses
        )

    async def aclose(self) -> None:
        """Wait for the responses being written."""
        await self._new_responses.aclose()

    async def save_items(self, tenant: str, items: Sequence[Item]) -> list[Item]:
        """Store ``items`` (ids assigned where missing); an id already stored stays as it is."""
        async with self.database.engine.begin() as connection:
            return await self._save(connection, tenant, items)

    async def _save(
        self, connection: AsyncConnection, tenant: str, items: Sequence[Item]
    ) -> list[Item]:
        items = with_ids(items)
        await insert_items(connection, self._insert, item_rows(tenant, items, _now()))
        return items

    async def _read(
        self,
        table: OwnerTable,
        tenant: str,
        key: str,
        read: Callable[[AsyncConnection], Awaitable[T]],
    ) -> T | None:
        """``None`` unless ``tenant`` owns the response or conversation ``key``, else ``read``."""
        async with self.database.engine.connect() as connection:
            if not await owned(connection, table, tenant, key):
                return None
            return await read(connection)

    async def _delete(self, table: OwnerTable, kinds: Sequence[str], tenant: str, key: str) -> bool:
        """Delete the tenant's response or conversation ``key``, its lists and orphaned items."""
        async with self.database.engine.begin() as connection:
            found = await connection.execute(
                delete(table).where(table.id == key, table.tenant == tenant)
            )
            if found.rowcount == 0:
                return False
            await unlist(connection, tenant, _L.owner_id == key, _L.kind.in_(kinds))
        return True

    # --- responses ---------------------------------------------------------------------

    async def create_response(
        self,
        tenant: str,
        response_id: str,
        resource: dict[str, Any],
        input_items: Sequence[Item],
        output_items: Sequence[Item],
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        *,
        add_to_conversation: bool = False,
    ) -> StoredResponse:
        """Store a response with its input and output items (and, with
        ``add_to_conversation``, append them to its conversation) in one transaction,
        shared with the responses being stored at the same time (group commit).

        Raises :class:`LookupError` when ``previous_response_id`` or ``conversation_id``
        is not the tenant's.
        """
        new = NewResponse(
            tenant=tenant,
            id=response_id,
            resource={key: value for key, value in resource.items() if key != "output"},
            input=with_ids(input_items),
            output=with_ids(output_items),
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            add_to_conversation=add_to_conversation and conversation_id is not None,
        )
        return await self._new_responses.submit(new)

    async def _write_new_responses(
        self, batch: Sequence[NewResponse]
    ) -> Sequence[StoredResponse | LookupError]:
        insert = self._insert
        return await self.database.write(lambda c: write_new_responses(c, insert, batch))

    async def update_response(
        self,
        tenant: str,
        response_id: str,
        resource: dict[str, Any],
        output_items: Sequence[Item] | None = None,
        *,
        only_if_status: Sequence[str] | None = None,
    ) -> bool:
        """Replace the response object (and its output, when given); ``False`` if not found,
        or if its stored status is not one of ``only_if_status`` (when given)."""
        resource = {key: value for key, value in resource.items() if key != "output"}
        changes: dict[str, Any] = {"resource": json.dumps(resource), "updated_at": _now()}
        changes |= {key: str(resource[key]) for key in ("status", "model") if resource.get(key)}
        mine = [ResponseRow.id == response_id, ResponseRow.tenant == tenant]
        if only_if_status is not None:
            mine.append(ResponseRow.status.in_(only_if_status))
        async with self.database.engine.begin() as connection:
            found = await connection.execute(update(ResponseRow).where(*mine).values(changes))
            if found.rowcount == 0:
                return False
            if output_items is not None:
                # Unlist first: an item of the old and the new output is collected, then saved.
                await unlist(connection, tenant, *list_of(response_id, "output"))
                outputs = await self._save(connection, tenant, output_items)
                await append_to_list(connection, tenant, response_id, "output", 0, outputs)
        return True

    async def with_status(self, response_ids: Sequence[str], status: str) -> set[str]:
        """Those of ``response_ids`` (of any tenant) whose stored status is ``status``."""
        if not response_ids:
            return set()
        query = select(ResponseRow.id).where(
            ResponseRow.id.in_(list(response_ids)), ResponseRow.status == status
        )
        async with self.database.engine.connect() as connection:
            return set((await connection.scalars(query)).all())

    async def get_response(
        self, tenant: str, response_id: str, *, include_input: bool = False
    ) -> StoredResponse | None:
        """The response, its output loaded (and its input, when asked); ``None`` if not found."""
        mine = (ResponseRow.id == response_id, ResponseRow.tenant == tenant)
        lists = {
            kind: items_of(*list_of(response_id, kind)).order_by(_L.position)
            for kind in RESPONSE_LISTS
        }
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(select(ResponseRow).where(*mine))).first()
            if row is None:
                return None
            output = await load_items(connection, lists["output"])
            inputs = await load_items(connection, lists["input"]) if include_input else None
        values = row._asdict() | {"resource": json.loads(row.resource)}
        return StoredResponse(**values, output=output, input=inputs)

    async def input_items(self, tenant: str, response_id: str) -> list[Item] | None:
        """All the response's input items, in order; ``None`` if there is no such response."""
        query = items_of(*list_of(response_id, "input")).order_by(_L.position)
        return await self._read(ResponseRow, tenant, response_id, lambda c: load_items(c, query))

    async def delete_response(self, tenant: str, response_id: str) -> bool:
        """Delete the response and its lists; its items go unless another list names them."""
        return await self._delete(ResponseRow, RESPONSE_LISTS, tenant, response_id)

    async def list_input_items(
        self,
        tenant: str,
        response_id: str,
        *,
        after: str | None = None,
        limit: int = 20,
        order: Order = "desc",
    ) -> Page | None:
        """A page of the response's input items; ``None`` if there is no such response.

        Raises :class:`ValueError` when ``after`` is not an item of the list.
        """
        owner = list_of(response_id, "input")
        return await self._read(
            ResponseRow, tenant, response_id, lambda c: page_of(c, owner, after, limit, order)
        )

    async def history(self, tenant: str, response_id: str) -> list[Item] | None:
        """The conversation ``response_id`` continues, ``None`` if there is no such response.

        For each response of the chain ``previous_response_id`` → … → ``response_id``,
        oldest first, its input items then its output items. The chain stops at a deleted
        response.
        """
        first = (ResponseRow.id, ResponseRow.previous_response_id, sql_literal("0").label("depth"))
        mine = (ResponseRow.id == response_id, ResponseRow.tenant == tenant)
        chain = select(*first).where(*mine).cte("chain", recursive=True)
        parent = aliased(ResponseRow)
        chain = chain.union_all(
            select(parent.id, parent.previous_response_id, chain.c.depth + 1)
            .join(chain, parent.id == chain.c.previous_response_id)
            .where(parent.tenant == tenant, chain.c.depth < _MAX_CHAIN)
        )
        query = (
            items_of(_L.kind.in_(RESPONSE_LISTS))
            .join(chain, _L.owner_id == chain.c.id)
            .order_by(chain.c.depth.desc(), _L.kind, _L.position)  # "input" < "output"
        )
        return await self._read(ResponseRow, tenant, response_id, lambda c: load_items(c, query))

    # --- conversations -----------------------------------------------------------------

    async def create_conversation(
        self, tenant: str, metadata: dict[str, Any] | None = None, items: Sequence[Item] = ()
    ) -> dict[str, Any]:
        """A new conversation holding ``items``; returns the conversation object."""
        conversation_id, now, metadata = new_id("conv"), _now(), dict(metadata or {})
        row = {"id": conversation_id, "tenant": tenant, "meta": json.dumps(metadata)}
        row |= {"created_at": now, "updated_at": now}
        async with self.database.engine.begin() as connection:
            saved = await self._save(connection, tenant, items)
            await connection.execute(
                insert(ConversationRow).values(row | {"next_position": len(saved)})
            )
            await append_to_list(connection, tenant, conversation_id, CONVERSATION, 0, saved)
        return _conversation(conversation_id, now, metadata)

    async def get_conversation(self, tenant: str, conversation_id: str) -> dict[str, Any] | None:
        query = select(ConversationRow.created_at, ConversationRow.meta).where(
            ConversationRow.id == conversation_id, ConversationRow.tenant == tenant
        )
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _conversation(conversation_id, *row)

    async def update_conversation(
        self, tenant: str, conversation_id: str, metadata: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Replace the conversation's metadata; the conversation object, ``None`` if not found."""
        async with self.database.engine.begin() as connection:
            created_at = await connection.scalar(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id, ConversationRow.tenant == tenant)
                .values(meta=json.dumps(metadata), updated_at=_now())
                .returning(ConversationRow.created_at)
            )
        return None if created_at is None else _conversation(conversation_id, created_at, metadata)

    async def delete_conversation(self, tenant: str, conversation_id: str) -> bool:
        """Delete the conversation; its items go unless a response still lists them."""
        return await self._delete(ConversationRow, (CONVERSATION,), tenant, conversation_id)

    async def add_conversation_items(
        self, tenant: str, conversation_id: str, items: Sequence[Item]
    ) -> list[Item] | None:
        """Append ``items`` (ids set) in one transaction; ``None`` if no such conversation."""
        async with self.database.engine.begin() as connection:
            # Locks the conversation's row until commit: concurrent appends take turns.
            end = await connection.scalar(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id, ConversationRow.tenant == tenant)
                .values(next_position=ConversationRow.next_position + len(items), updated_at=_now())
                .returning(ConversationRow.next_position)
            )
            if end is None:
                return None
            saved = await self._save(connection, tenant, items)
            await append_to_list(
                connection, tenant, conversation_id, CONVERSATION, end - len(saved), saved
            )
        return saved

    async def list_conversation_items(
        self,
        tenant: str,
        conversation_id: str,
        *,
        after: str | None = None,
        limit: int = 20,
        order: Order = "desc",
    ) -> Page | None:
        """A page of the conversation's items; ``None`` if there is no such conversation.

        Raises :class:`ValueError` when ``after`` is not an item of the conversation.
        """
        owner = list_of(conversation_id, CONVERSATION)
        return await self._read(
            ConversationRow,
            tenant,
            conversation_id,
            lambda c: page_of(c, owner, after, limit, order),
        )

    async def conversation_items(self, tenant: str, conversation_id: str) -> list[Item] | None:
        """All the conversation's items, oldest first (to build a model request)."""
        query = items_of(*list_of(conversation_id, CONVERSATION)).order_by(_L.position)
        return await self._read(
            ConversationRow, tenant, conversation_id, lambda c: load_items(c, query)
        )

    async def get_conversation_item(
        self, tenant: str, conversation_id: str, item_id: str
    ) -> Item | None:
        owner = list_of(conversation_id, CONVERSATION)
        query = items_of(*owner, _L.tenant == tenant, _L.item_id == item_id).limit(1)
        async with self.database.engine.connect() as connection:
            found = await load_items(connection, query)
        return found[0] if found else None

    async def delete_conversation_item(
        self, tenant: str, conversation_id: str, item_id: str
    ) -> bool:
        """Remove the item from the conversation (deleting it unless a response lists it)."""
        owner = list_of(conversation_id, CONVERSATION)
        async with self.database.engine.begin() as connection:
            return bool(await unlist(connection, tenant, *owner, _L.item_id == item_id))
