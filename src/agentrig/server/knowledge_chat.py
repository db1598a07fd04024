"""``/api/v1/chat``: chat with a knowledge base, answered with sources.

``POST /api/v1/chat`` answers at once; ``/chat/async`` enqueues a ``process_chat`` job
(poll ``GET /api/v1/chat/jobs/{job_id}``, whose result is the same body); ``/chat/stream``
sends Server-Sent Events and ``/chat/ws`` the same events over a WebSocket: ``start``,
``delta`` (answer text), ``tool_call`` / ``tool_result`` (follow-up searches), and
``done`` with the answer and its sources. The WebSocket takes the API key as a bearer
header or, for browsers, an ``api_key`` query parameter.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agentrig.items import new_id
from agentrig.jobs.handlers import PROCESS_CHAT
from agentrig.server.auth import DEFAULT_TENANT, tenant_of
from agentrig.server.errors import APIError, not_found
from agentrig.server.event_stream import Emit, EventStreamResponse
from agentrig.server.openapi import PathId, errors
from agentrig.server.sse import encode_sse

router = APIRouter(prefix="/api/v1/chat", tags=["knowledge"])


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=100_000)
    conversation_id: str | None = Field(default=None, max_length=200, pattern=r"^[\w.:-]+$")
    agent_id: str | None = Field(default=None, max_length=200)
    kb: str | None = Field(default=None, max_length=64)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``KnowledgeChat.answer`` and ``stream``."""
        return self.model_dump(exclude={"message"})


def _chat(state: Any) -> Any:
    if state.chat is None:
        raise APIError(503, "the knowledge chat is not available here", type="server_error")
    return state.chat


def _refused(exc: Exception) -> APIError:
    text = str(exc)
    param = text.split(":", 1)[0] if ":" in text else None
    if param not in ("message", "agent_id", "kb", "query"):
        param = "kb" if "knowledge base" in text else None
    return APIError(400, text, param=param)


@router.post("", responses=errors(400, 401, 502, 504))
async def chat(
    body: ChatRequest, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    try:
        answer = await _chat(request.app.state.server).answer(
            tenant, body.message, **body.options()
        )
    except (ValueError, LookupError) as exc:
        raise _refused(exc) from None
    return JSONResponse(answer.to_json())


@router.post("/async", status_code=202, responses=errors(400, 401))
async def chat_async(
    body: ChatRequest, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    state = request.app.state.server
    _chat(state)
    payload = body.model_dump() | {"conversation_id": body.conversation_id or new_id("conv")}
    job = await state.jobs.enqueue(PROCESS_CHAT, tenant, payload)
    return JSONResponse(
        {"job_id": job.id, "status": job.status, "conversation_id": payload["conversation_id"]},
        status_code=202,
    )


@router.get("/jobs/{job_id}", responses=errors(401, 404))
async def chat_job(
    job_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    job = await request.app.state.server.jobs.jobs.get(job_id, tenant)
    if job is None or job.type != PROCESS_CHAT:
        raise not_found("chat job", job_id)
    body: dict[str, Any] = {"job_id": job.id, "status": job.status, "attempts": job.attempts}
    if job.status == "succeeded":
        body |= job.result
    elif job.status == "failed":
        body["error"] = job.error
    return JSONResponse(body)


_CHAT_EVENT = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"enum": ["start", "delta", "tool_call", "tool_result", "done", "error"]}
    },
}
CHAT_EVENTS = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["start", "delta", "tool_call", "tool_result", "done", "error"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": _CHAT_EVENT,
        },
    },
}


@router.post(
    "/stream",
    response_model=None,
    responses={
        200: {
            "description": "Server-Sent Events: start, delta (answer text), tool_call and "
            "tool_result (follow-up searches), then done with the answer and its sources.",
            "content": {"text/event-stream": {"itemSchema": CHAT_EVENTS}},
        }
    }
    | errors(400, 401),
)
async def chat_stream(
    body: ChatRequest, request: Request, tenant: str = Depends(tenant_of)
) -> EventStreamResponse:
    events = _chat(request.app.state.server).stream(tenant, body.message, **body.options())
    try:  # bad input is a 400 before the stream starts, not an error event in it
        first = await anext(events)
    except (ValueError, LookupError) as exc:
        raise _refused(exc) from None

    async def produce(emit: Emit) -> None:  # cancelled if the client goes away
        emit(encode_sse(first))
        try:
            async for event in events:
                emit(encode_sse(event))
        except Exception as exc:  # the model failed mid-answer
            emit(encode_sse({"type": "error", "message": f"{type(exc).__name__}: {exc}"}))

    return EventStreamResponse(produce)


@router.websocket("/ws")
async def chat_ws(websocket: WebSocket) -> None:
    state = websocket.app.state.server
    tenant = await _ws_tenant(websocket, state)
    await websocket.accept()
    if tenant is None:
        await websocket.send_json({"type": "error", "message": "missing or unknown API key"})
        await websocket.close(code=4401)
        return
    try:
        while True:
            raw = await websocket.receive_text()
            try:
                body = ChatRequest.model_validate_json(raw)
                events = _chat(state).stream(tenant, body.message, **body.options())
                async for event in events:
                    await websocket.send_json(event)
            except WebSocketDisconnect:
                raise
            except APIError as exc:
                await websocket.send_json({"type": "error", "message": exc.message})
            except Exception as exc:  # bad JSON, bad input, a model failure: say so, go on
                await websocket.send_json({"type": "error", "message": _brief(exc)})
    except WebSocketDisconnect:
        return


async def _ws_tenant(websocket: WebSocket, state: Any) -> str | None:
    if not state.auth_enabled:
        return DEFAULT_TENANT
    header = websocket.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else None
    key = key or websocket.query_params.get("api_key")
    if not key:
        return None
    record = await state.keys.verify(key)
    return None if record is None else record.tenant


def _brief(exc: Exception) -> str:
    if hasattr(exc, "errors") and callable(exc.errors):  # pydantic's ValidationError
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        return f"{where}: {first.get('msg')}"
    return str(exc) or type(exc).__name__
