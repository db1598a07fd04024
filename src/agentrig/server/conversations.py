"""``/v1/conversations``: the OpenAI Conversations API.

A conversation is an ordered list of stored items; a response created with
``conversation`` reads it as its history and appends its input and output to it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentrig.items import Item
from agentrig.server.auth import tenant_of
from agentrig.server.errors import APIError, not_found
from agentrig.server.openapi import (
    After,
    Conversation,
    DeletedConversation,
    ItemList,
    ItemObject,
    PathId,
    errors,
    ok,
)
from agentrig.server.wire import (
    conversation_object,
    deleted_object,
    input_item,
    item_list,
    parse_input_items,
)

router = APIRouter()
MAX_METADATA_KEYS = 16


class CreateConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    metadata: dict[str, str] | None = Field(default=None, max_length=MAX_METADATA_KEYS)


class UpdateConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, str] = Field(max_length=MAX_METADATA_KEYS)


class AddItems(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


def _items(raw: list[dict[str, Any]]) -> list[Item]:
    try:
        return parse_input_items(raw)
    except (ValidationError, ValueError) as exc:
        raise APIError(400, f"Invalid items: {exc}", param="items") from None


async def _conversation(request: Request, tenant: str, conversation_id: str) -> dict[str, Any]:
    found = await request.app.state.server.responses.get_conversation(tenant, conversation_id)
    if found is None:
        raise not_found("conversation", conversation_id)
    return found


@router.post(
    "/v1/conversations",
    response_model=None,
    responses=ok(Conversation, "The new conversation.") | errors(400, 401),
)
async def create_conversation(
    body: CreateConversation, request: Request, tenant: str = Depends(tenant_of)
) -> dict[str, Any]:
    store = request.app.state.server.responses
    created = await store.create_conversation(tenant, body.metadata or {}, _items(body.items))
    return conversation_object(created)


@router.get(
    "/v1/conversations/{conversation_id}",
    response_model=None,
    responses=ok(Conversation, "The conversation.") | errors(400, 401, 404),
)
async def get_conversation(
    conversation_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> dict[str, Any]:
    return conversation_object(await _conversation(request, tenant, conversation_id))


@router.post(
    "/v1/conversations/{conversation_id}",
    response_model=None,
    responses=ok(Conversation, "The conversation, updated.") | errors(400, 401, 404),
)
async def update_conversation(
    conversation_id: PathId,
    body: UpdateConversation,
    request: Request,
    tenant: str = Depends(tenant_of),
) -> dict[str, Any]:
    store = request.app.state.server.responses
    updated = await store.update_conversation(tenant, conversation_id, body.metadata)
    if updated is None:
        raise not_found("conversation", conversation_id)
    return conversation_object(updated)


@router.delete(
    "/v1/conversations/{conversation_id}",
    response_model=None,
    responses=ok(DeletedConversation, "Deleted.") | errors(400, 401, 404),
)
async def delete_conversation(
    conversation_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> dict[str, Any]:
    if not await request.app.state.server.responses.delete_conversation(tenant, conversation_id):
        raise not_found("conversation", conversation_id)
    return deleted_object(conversation_id, "conversation")


@router.post(
    "/v1/conversations/{conversation_id}/items",
    response_model=None,
    responses=ok(ItemList, "The items added.") | errors(400, 401, 404),
)
async def add_items(
    conversation_id: PathId, body: AddItems, request: Request, tenant: str = Depends(tenant_of)
) -> dict[str, Any]:
    await _conversation(request, tenant, conversation_id)
    store = request.app.state.server.responses
    added = await store.add_conversation_items(tenant, conversation_id, _items(body.items))
    data = [input_item(item) for item in added]
    return item_list(data, data[0]["id"] if data else None, data[-1]["id"] if data else None, False)


@router.get(
    "/v1/conversations/{conversation_id}/items",
    response_model=None,
    responses=ok(ItemList, "A page of the conversation's items.") | errors(400, 401, 404),
)
async def list_items(
    conversation_id: PathId,
    request: Request,
    after: After = None,
    limit: int = Query(default=20, ge=1, le=100),
    order: str = Query(default="desc", pattern="^(asc|desc)$"),
    tenant: str = Depends(tenant_of),
) -> dict[str, Any]:
    await _conversation(request, tenant, conversation_id)
    try:
        page = await request.app.state.server.responses.list_conversation_items(
            tenant, conversation_id, after=after, limit=limit, order=order
        )
    except ValueError as exc:  # ``after`` is not an item of the list
        raise APIError(400, str(exc), param="after") from None
    return item_list([input_item(i) for i in page.data], page.first_id, page.last_id, page.has_more)


@router.get(
    "/v1/conversations/{conversation_id}/items/{item_id}",
    response_model=None,
    responses=ok(ItemObject, "The item.") | errors(400, 401, 404),
)
async def get_item(
    conversation_id: PathId, item_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> dict[str, Any]:
    await _conversation(request, tenant, conversation_id)
    item = await request.app.state.server.responses.get_conversation_item(
        tenant, conversation_id, item_id
    )
    if item is None:
        raise not_found("item", item_id)
    return input_item(item)


@router.delete(
    "/v1/conversations/{conversation_id}/items/{item_id}",
    response_model=None,
    responses=ok(Conversation, "The conversation, without the item.") | errors(400, 401, 404),
)
async def delete_item(
    conversation_id: PathId, item_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> dict[str, Any]:
    conversation = await _conversation(request, tenant, conversation_id)
    store = request.app.state.server.responses
    if not await store.delete_conversation_item(tenant, conversation_id, item_id):
        raise not_found("item", item_id)
    return conversation_object(conversation)
