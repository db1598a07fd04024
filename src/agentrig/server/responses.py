"""``/v1/responses``: the OpenAI Responses API over agentrig's router and agents.

``model`` is a router role, a ``provider/model``, ``agent:<name>``, ``crew:<name>`` or
``flow:<name>``. For a model, the request's function tools are the client's: the response
ends with ``function_call`` items and the client continues with ``function_call_output``
items. For an agent, its own tools run on the server, handoffs included; crews and flows
run as ``crew_responses`` and ``flow_responses`` say. ``previous_response_id`` and
``conversation`` give the model what came before; ``store`` keeps the response; ``stream``
answers with Server-Sent Events; ``background`` answers at once with a queued response
that a task completes (a crew's or a flow's: a job, ``response_jobs``; ``POST
/v1/responses/{id}/cancel`` stops it); the two together are a 400 (a background response
is polled, not streamed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from agentrig.agents import Runner
from agentrig.errors import AgentrigError
from agentrig.items import Item, new_id
from agentrig.llm.types import ModelRequest
from agentrig.server.app import UPSTREAM_PROVIDER, ServerState
from agentrig.server.auth import tenant_of
from agentrig.server.background import RUNNING
from agentrig.server.crew_responses import PREFIX as CREW_PREFIX
from agentrig.server.crew_responses import prepare_crew, run_crew_turn
from agentrig.server.errors import APIError, from_exception, not_found
from agentrig.server.event_stream import Emit, EventStreamResponse
from agentrig.server.flow_responses import PREFIX as FLOW_PREFIX
from agentrig.server.flow_responses import prepare_flow, run_flow_turn
from agentrig.server.openapi import (
    RESPONSE_EVENTS,
    After,
    DeletedResponse,
    ItemList,
    PathId,
    ResponseResource,
    errors,
    ok,
)
from agentrig.server.sse import ResponseEventStream, encode_sse
from agentrig.server.wire import (
    CreateResponseRequest,
    WireError,
    deleted_object,
    input_item,
    item_list,
    output_item,
    response_resource,
)
from agentrig.store.responses import with_ids
from agentrig.usage import Usage

router = APIRouter()
log = logging.getLogger(__name__)


@dataclass
class Turn:
    """One response in the making: its request, context and outcome."""

    tenant: str
    body: CreateResponseRequest
    history: list[Item]
    input: list[Item]
    conversation_id: str | None
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))
    output: list[Item] = field(default_factory=list)
    usage: Usage | None = None
    cost_micros: int = 0
    status: str = "in_progress"
    error: dict[str, Any] | None = None
    incomplete: dict[str, Any] | None = None
    crew_state: Any = None  # the CrewState of a crew:<name> turn
    flow_run: Any = None  # the fresh FlowRun of a flow:<name> turn

    def resource(self) -> dict[str, Any]:
        done = self.status in ("completed", "failed", "incomplete", "cancelled")
        return response_resource(
            id=self.id,
            created_at=self.created_at,
            model=self.body.model,
            status=self.status,
            request=self.body,
            output=self.output,
            usage=self.usage,
            previous_response_id=self.body.previous_response_id,
            conversation_id=self.conversation_id,
            error=self.error,
            incomplete_details=self.incomplete,
            completed_at=int(time.time()) if done else None,
        )


def _state(request: Request) -> ServerState:
    return request.app.state.server


async def _prepare(state: ServerState, tenant: str, body: CreateResponseRequest) -> Turn:
    if body.previous_response_id is not None and body.conversation is not None:
        raise APIError(
            400,
            "Use either previous_response_id or conversation, not both.",
            param="previous_response_id",
            code="invalid_request",
        )
    history: list[Item] = []
    conversation_id = body.conversation_id()
    if body.previous_response_id is not None:  # even "": looked up, not ignored
        found = await state.responses.history(tenant, body.previous_response_id)
        if found is None:
            raise APIError(
                400,
                f"Previous response with id '{body.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        history = found
    elif conversation_id is not None:
        if await state.responses.get_conversation(tenant, conversation_id) is None:
            raise not_found("conversation", conversation_id, param="conversation")
        history = await state.responses.conversation_items(tenant, conversation_id)
    if body.background and not body.store:
        raise APIError(400, "background responses must be stored (store: true).", param="store")
    if body.background and body.stream:
        raise APIError(
            400,
            "stream and background cannot be combined: create the background response, "
            "then poll GET /v1/responses/{id}.",
            param="stream",
        )
    if body.model.startswith("agent:") and body.model[6:] not in state.agents:
        raise APIError(
            400,
            f"No agent named {body.model[6:]!r}; served agents: {sorted(state.agents)}.",
            param="model",
            code="model_not_found",
        )
    try:
        if not body.model.startswith(("agent:", CREW_PREFIX, FLOW_PREFIX)):
            state.router.client(_route_name(state, body.model))
    except AgentrigError as exc:
        raise APIError(400, str(exc), param="model", code="model_not_found") from None
    try:
        # item references resolve among the items the response continues from
        items = body.input_items({item.id: item for item in history if item.id})
    except WireError as exc:
        raise APIError(400, str(exc), param=exc.param) from None
    turn = Turn(tenant, body, history, items, conversation_id)
    if body.model.startswith(CREW_PREFIX):
        turn.crew_state = prepare_crew(state, tenant, body.model, items)
    elif body.model.startswith(FLOW_PREFIX):
        turn.flow_run = prepare_flow(state, tenant, body.model, items)
    return turn


def _route_name(state: ServerState, model: str) -> str:
    """In gateway mode every model that is not a role or provider/model goes upstream."""
    settings = state.router.settings
    if state.upstream is not None and model not in settings.roles:
        provider = model.partition("/")[0]
        if provider not in settings.providers:
            return f"{UPSTREAM_PROVIDER}/{model}"
    return model


def _model_request(state: ServerState, turn: Turn) -> ModelRequest:
    body = turn.body
    return ModelRequest(
        items=[*turn.history, *turn.input],
        instructions=body.instructions,
        tools=body.tool_specs(),
        tool_choice=body.agentrig_tool_choice(),
        parallel_tool_calls=body.parallel_tool_calls,
        output_schema=body.output_schema(),
        settings=body.model_settings(),
    )


async def _execute(
    state: ServerState, turn: Turn, stream: ResponseEventStream | None, send: Any = None
) -> None:
    """Produce the turn's output with a model or an agent, feeding ``stream`` if given."""
    body = turn.body
    if body.model.startswith((CREW_PREFIX, FLOW_PREFIX)):
        run = run_crew_turn if turn.crew_state is not None else run_flow_turn
        await run(state, turn, stream, send)
        _count(state, turn)
        return
    if body.model.startswith("agent:"):
        agent = state.agents[body.model[6:]]
        items = [*turn.history, *turn.input]
        if stream is None:
            result = await Runner.run(agent, items, router=state.router, registry=state.agents)
        else:
            run = Runner.run_streamed(agent, items, router=state.router, registry=state.agents)
            async for event in run.events():
                for wire_event in stream.feed(event):
                    send(wire_event)
            result = run.result
        turn.output, turn.usage = list(result.new_items), result.usage
        turn.cost_micros = result.cost_micros
        turn.status = "completed"
        _count(state, turn)
        return
    client = state.router.client(_route_name(state, body.model))
    request = _model_request(state, turn)
    if stream is None:
        response = await client.complete(request)
    else:
        response = None
        async for event in client.stream(request):
            if event.type == "completed":
                response = event.response
            for wire_event in stream.feed(event):
                send(wire_event)
        if response is None:
            raise APIError(502, "the model's stream ended early", type="server_error")
    turn.output, turn.usage = response.output, response.usage
    turn.cost_micros = response.cost_micros
    _count(state, turn)
    if response.finish_reason == "length":
        turn.status, turn.incomplete = "incomplete", {"reason": "max_output_tokens"}
    elif response.finish_reason == "content_filter":
        turn.status, turn.incomplete = "incomplete", {"reason": "content_filter"}
    else:
        turn.status = "completed"


def _count(state: ServerState, turn: Turn) -> None:
    if state.metrics is not None and turn.usage is not None:
        usage = turn.usage
        state.metrics.record_usage(
            turn.body.model, usage.input_tokens, usage.output_tokens, turn.cost_micros
        )


def _fail(turn: Turn, exc: Exception) -> APIError:
    error = from_exception(exc)
    turn.status = "failed"
    turn.error = {"code": error.code or "server_error", "message": error.message}
    return error


async def _save(state: ServerState, turn: Turn, *, first: bool = True) -> dict[str, Any]:
    """Store the turn's response (if ``store``); returns the response object."""
    if not turn.body.store:
        return turn.resource()
    tenant = turn.tenant
    # Ids now, for the resource; the items are written by create/update_response, in the
    # response's own transaction (not in two more transactions of their own before it).
    turn.input, turn.output = with_ids(turn.input), with_ids(turn.output)
    to_conversation = turn.conversation_id is not None and turn.status in (
        "completed",
        "incomplete",
    )
    resource = turn.resource()
    try:
        if first:
            await state.responses.create_response(
                tenant,
                turn.id,
                resource,
                turn.input,
                turn.output,
                previous_response_id=turn.body.previous_response_id,
                conversation_id=turn.conversation_id,
                add_to_conversation=to_conversation,
            )
            return resource
        if not await state.responses.update_response(
            tenant, turn.id, resource, turn.output, only_if_status=("in_progress",)
        ):
            return resource  # cancelled meanwhile: the cancel stands
        if to_conversation and turn.conversation_id is not None:
            added = await state.responses.add_conversation_items(
                tenant, turn.conversation_id, [*turn.input, *turn.output]
            )
            if added is None:
                raise LookupError(turn.conversation_id)
        return resource
    except LookupError:
        # Deleted while the model answered: the response cannot join it.
        if turn.body.previous_response_id is not None:
            raise APIError(
                400,
                f"Previous response with id '{turn.body.previous_response_id}' was deleted "
                "while this response was generated.",
                param="previous_response_id",
                code="previous_response_not_found",
            ) from None
        raise not_found("conversation", turn.conversation_id or "", param="conversation") from None


@router.post(
    "/v1/responses",
    response_model=None,
    responses=ok(ResponseResource, "The response (queued if background).", events=RESPONSE_EVENTS)
    | errors(400, 401, 404, 429, 502, 504),
)
async def create_response(
    body: CreateResponseRequest, request: Request, tenant: str = Depends(tenant_of)
) -> Any:
    state = _state(request)
    turn = await _prepare(state, tenant, body)
    if body.background:
        turn.status = "queued"
        turn.input = with_ids(turn.input)  # written with the queued response
        queued = turn.resource()
        await state.responses.create_response(
            tenant,
            turn.id,
            queued,
            turn.input,
            [],
            previous_response_id=body.previous_response_id,
            conversation_id=turn.conversation_id,
        )
        from agentrig.server.response_jobs import response_job

        job = response_job(turn)  # a crew's or a flow's may take long: a job, not a task
        if job is not None:
            await state.jobs.enqueue(job[0], tenant, job[1])
        else:
            state.background.start(turn.id, _in_background(state, turn))
        return JSONResponse(queued)
    if body.stream:
        return _stream(state, turn)
    try:
        await _execute(state, turn, None)
    except Exception as exc:
        raise _fail(turn, exc) from exc
    return JSONResponse(await _save(state, turn))


async def _in_background(
    state: ServerState, turn: Turn, *, start_from: tuple[str, ...] = ("queued",)
) -> None:
    """Complete the stored background response of ``turn`` if its status is one of
    ``start_from`` (a job retried after its worker died starts from ``in_progress``)."""
    store = state.responses
    try:
        turn.status = "in_progress"  # a cancel may land while this is written: inside the try
        if not await store.update_response(
            turn.tenant, turn.id, turn.resource(), only_if_status=start_from
        ):
            return  # cancelled (by another process) before it started
        await _execute(state, turn, None)
    except asyncio.CancelledError:
        turn.status = "cancelled"
        await store.update_response(
            turn.tenant, turn.id, turn.resource(), [], only_if_status=RUNNING
        )
        raise
    except Exception as exc:
        _fail(turn, exc)
    try:
        await _save(state, turn, first=False)
    except APIError as exc:  # stored, but its conversation was deleted meanwhile
        log.warning("background response %s not added to its conversation: %s", turn.id, exc)


def _stream(state: ServerState, turn: Turn) -> EventStreamResponse:
    model = turn.body.model
    stream = ResponseEventStream(agent=model[6:] if model.startswith("agent:") else None)

    async def produce(emit: Emit) -> None:
        def send(event: dict[str, Any]) -> None:
            emit(encode_sse(event))

        send(stream.created(turn.resource()))
        send(stream.in_progress(turn.resource()))
        try:
            await _execute(state, turn, stream, send)
        except Exception as exc:
            _fail(turn, exc)
            for event in stream.finish("incomplete"):
                send(event)
            send(stream.failed(turn.resource()))
            return
        for event in stream.finish(turn.status):
            send(event)
        try:
            final = await _save(state, turn)
        except APIError as exc:  # its conversation or previous response was deleted
            _fail(turn, exc)
            send(stream.failed(turn.resource()))
            return
        end = {"incomplete": stream.incomplete, "failed": stream.failed}.get(turn.status)
        send((end or stream.completed)(final))

    return EventStreamResponse(produce)


@router.get(
    "/v1/responses/{response_id}",
    response_model=None,
    responses=ok(ResponseResource, "The stored response.") | errors(400, 401, 404),
)
async def get_response(
    response_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    stored = await _state(request).responses.get_response(tenant, response_id)
    if stored is None:
        raise not_found("response", response_id)
    return JSONResponse(_resource(stored))


@router.delete(
    "/v1/responses/{response_id}",
    response_model=None,
    responses=ok(DeletedResponse, "Deleted.") | errors(400, 401, 404),
)
async def delete_response(
    response_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> dict[str, Any]:
    if not await _state(request).responses.delete_response(tenant, response_id):
        raise not_found("response", response_id)
    return deleted_object(response_id, "response")


@router.post(
    "/v1/responses/{response_id}/cancel",
    response_model=None,
    responses=ok(ResponseResource, "The response, cancelled unless it had finished.")
    | errors(400, 401, 404),
)
async def cancel_response(
    response_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    state = _state(request)
    stored = await state.responses.get_response(tenant, response_id)
    if stored is None:
        raise not_found("response", response_id)
    if not stored.resource.get("background"):
        raise APIError(400, "Only background responses can be cancelled.", param="response_id")
    await state.background.cancel(tenant, response_id, stored.resource)
    stored = await state.responses.get_response(tenant, response_id)
    return JSONResponse(_resource(stored))


def _resource(stored: Any) -> dict[str, Any]:
    """A stored response as the API returns it (the store keeps ``output`` as item ids)."""
    return {**stored.resource, "output": [output_item(item) for item in stored.output]}


@router.get(
    "/v1/responses/{response_id}/input_items",
    response_model=None,
    responses=ok(ItemList, "A page of the response's input items.") | errors(400, 401, 404),
)
async def list_input_items(
    response_id: PathId,
    request: Request,
    after: After = None,
    limit: int = Query(default=20, ge=1, le=100),
    order: str = Query(default="desc", pattern="^(asc|desc)$"),
    tenant: str = Depends(tenant_of),
) -> dict[str, Any]:
    state = _state(request)
    if await state.responses.get_response(tenant, response_id) is None:
        raise not_found("response", response_id)
    try:
        page = await state.responses.list_input_items(
            tenant, response_id, after=after, limit=limit, order=order
        )
    except ValueError as exc:  # ``after`` is not an item of the list
        raise APIError(400, str(exc), param="after") from None
    return item_list([input_item(i) for i in page.data], page.first_id, page.last_id, page.has_more)
