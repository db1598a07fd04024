"""Writing new responses, many per transaction (see :mod:`agentrig.store.group_commit`).

Synchronous, for :meth:`~agentrig.store.db.Database.write`.

A batch is written with a handful of statements whatever its size: one query per kind
of link (previous responses, conversations) to check them, one ``UPDATE … RETURNING``
per conversation that the batch appends to (sorted, so that concurrent batches lock the
conversations in one order), then one multi-row insert each for the items, the responses
and the list rows. A response whose previous response or conversation is not its
tenant's fails alone with :class:`LookupError`; the others are written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from agentrig.items import Item
from agentrig.store.item_lists import CONVERSATION, OwnerTable, item_rows, new_items_insert
from agentrig.store.models import ConversationRow, ItemListRow, ResponseRow


@dataclass
class StoredResponse:
    """A stored response: ``resource`` is the response object without ``output``."""

    id: str
    tenant: str
    status: str
    model: str
    previous_response_id: str | None
    conversation_id: str | None
    resource: dict[str, Any]
    output: list[Item]
    created_at: datetime
    updated_at: datetime
    input: list[Item] | None = None  # loaded only when asked for

    def to_json(self) -> dict[str, Any]:
        """The response object as the API returns it."""
        return {**self.resource, "output": [item.to_json() for item in self.output]}


@dataclass
class NewResponse:
    """A response to store with its items (ids set); ``resource`` without ``output``."""

    tenant: str
    id: str
    resource: dict[str, Any]
    input: list[Item]
    output: list[Item]
    previous_response_id: str | None = None
    conversation_id: str | None = None
    add_to_conversation: bool = False  # append input and output to the conversation

    @property
    def items(self) -> list[Item]:
        return [*self.input, *self.output]


def write_new_responses(
    connection: Connection, dialect_insert: Any, batch: Sequence[NewResponse]
) -> list[StoredResponse | LookupError]:
    """Write ``batch`` in ``connection``'s transaction; per response, stored or refused."""
    now = datetime.now(UTC)
    refused = _missing_links(connection, batch)
    starts = _reserve_positions(
        connection, [r for r in batch if r.add_to_conversation and id(r) not in refused], refused
    )
    written = [r for r in batch if id(r) not in refused]
    items: list[dict[str, Any]] = []
    lists: list[dict[str, Any]] = []
    for new in written:
        items += item_rows(new.tenant, new.items, now)
        lists += _list_rows(new.tenant, new.id, "input", 0, new.input)
        lists += _list_rows(new.tenant, new.id, "output", 0, new.output)
        if id(new) in starts:
            lists += _list_rows(
                new.tenant, new.conversation_id or "", CONVERSATION, starts[id(new)], new.items
            )
    if items:
        connection.execute(*new_items_insert(dialect_insert, items))
    if written:
        connection.execute(insert(ResponseRow), [_row(new, now) for new in written])
    if lists:
        connection.execute(insert(ItemListRow), lists)
    return [refused.get(id(new)) or _stored(new, now) for new in batch]


def _missing_links(connection: Connection, batch: Sequence[NewResponse]) -> dict[int, LookupError]:
    """The responses of ``batch`` whose previous response or conversation is not found."""
    refused: dict[int, LookupError] = {}
    for table, attribute in (
        (ResponseRow, "previous_response_id"),
        (ConversationRow, "conversation_id"),
    ):
        wanted = {(r.tenant, getattr(r, attribute)) for r in batch if getattr(r, attribute)}
        found = _existing(connection, table, wanted)
        for new in batch:
            key = getattr(new, attribute)
            if key and (new.tenant, key) not in found:
                refused.setdefault(id(new), LookupError(f"{key!r} not found"))
    return refused


def _existing(
    connection: Connection, table: OwnerTable, wanted: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    if not wanted:
        return set()
    ids = sorted({key for _, key in wanted})
    rows = connection.execute(select(table.tenant, table.id).where(table.id.in_(ids)))
    return {(tenant, key) for tenant, key in rows} & wanted


def _reserve_positions(
    connection: Connection, appending: Sequence[NewResponse], refused: dict[int, LookupError]
) -> dict[int, int]:
    """Each appending response's first position in its conversation (the conversation's
    ``next_position`` moved past all of them); a conversation gone refuses its responses."""
    by_conversation: dict[tuple[str, str], list[NewResponse]] = defaultdict(list)
    for new in appending:
        by_conversation[(new.tenant, new.conversation_id or "")].append(new)
    starts: dict[int, int] = {}
    for (tenant, conversation_id), responses in sorted(by_conversation.items()):
        count = sum(len(new.items) for new in responses)
        end = connection.scalar(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id, ConversationRow.tenant == tenant)
            .values(
                next_position=ConversationRow.next_position + count, updated_at=datetime.now(UTC)
            )
            .returning(ConversationRow.next_position)
        )
        if end is None:  # deleted since the links were checked
            for new in responses:
                refused[id(new)] = LookupError(f"{conversation_id!r} not found")
            continue
        position = end - count
        for new in responses:
            starts[id(new)] = position
            position += len(new.items)
    return starts


def _list_rows(
    tenant: str, owner: str, kind: str, start: int, items: Sequence[Item]
) -> list[dict[str, Any]]:
    return [
        {
            "owner_id": owner,
            "kind": kind,
            "tenant": tenant,
            "position": start + n,
            "item_id": item.id,
        }
        for n, item in enumerate(items)
    ]


def _row(new: NewResponse, now: datetime) -> dict[str, Any]:
    return {
        "id": new.id,
        "tenant": new.tenant,
        "status": str(new.resource.get("status") or "in_progress"),
        "model": str(new.resource.get("model") or ""),
        "previous_response_id": new.previous_response_id,
        "conversation_id": new.conversation_id,
        "resource": json.dumps(new.resource),
        "created_at": now,
        "updated_at": now,
    }


def _stored(new: NewResponse, now: datetime) -> StoredResponse:
    return StoredResponse(
        id=new.id,
        tenant=new.tenant,
        status=str(new.resource.get("status") or "in_progress"),
        model=str(new.resource.get("model") or ""),
        previous_response_id=new.previous_response_id,
        conversation_id=new.conversation_id,
        resource=new.resource,
        output=list(new.output),
        created_at=now,
        updated_at=now,
        input=list(new.input),
    )
