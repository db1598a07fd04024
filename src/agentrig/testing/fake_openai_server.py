"""A real HTTP server on 127.0.0.1 that speaks the Chat Completions and Embeddings
protocol, for testing anything that talks to an OpenAI-compatible endpoint.

It answers from a script of :class:`Reply`, :class:`Fail`, :class:`Hang` and
:class:`Malformed` behaviours (then a default reply), streams when asked to, and records
every request body. Runs uvicorn in a background thread; use it as a context manager::

    with FakeOpenAIServer() as server:
        server.script(Reply(text="hi"), Fail(429))
        client = OpenAIChatClient("gpt-test", base_url=server.base_url)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agentrig.testing.live_server import LiveServer


@dataclass
class Reply:
    """Answer with text and/or tool calls (``[(name, arguments_dict), ...]``)."""

    text: str | None = "ok"
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_tokens: int = 0
    finish_reason: str | None = None
    chunk_delay: float = 0.0  # seconds between streamed chunks


@dataclass
class Fail:
    """Answer with an HTTP error status and an OpenAI error envelope."""

    status: int
    message: str = "injected failure"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hang:
    """Wait ``seconds`` before answering with ``then`` (to trigger client timeouts)."""

    seconds: float
    then: Reply = field(default_factory=Reply)


@dataclass
class Malformed:
    """Answer 200 with a body that is not a valid completion."""

    body: str = "{this is not json"


Behaviour = Reply | Fail | Hang | Malformed


class FakeOpenAIServer:
    """A scripted Chat Completions server bound to a free port on 127.0.0.1."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._live: LiveServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        with self._lock:
            self._script.extend(behaviours)

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        self._live = LiveServer(app, lifespan="off").start()
        self.port = self._live.port
        return self

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- endpoints ---------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        behaviour = await self._behave()
        if isinstance(behaviour, Response):
            return behaviour
        model = body.get("model", "fake")
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _sse_chunks(behaviour, model, include_usage), media_type="text/event-stream"
            )
        return JSONResponse(_completion(behaviour, model))

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _behave(self) -> Reply | Response:
        """The next scripted behaviour: a reply to build, or a failure response."""
        behaviour = self._next()
        if isinstance(behaviour, Hang):
            await asyncio.sleep(behaviour.seconds)
            behaviour = behaviour.then
        if isinstance(behaviour, Fail):
            return JSONResponse(
                {"error": {"message": behaviour.message, "type": "fake", "code": None}},
                status_code=behaviour.status,
                headers=behaviour.headers,
            )
        if isinstance(behaviour, Malformed):
            return Response(behaviour.body, media_type="application/json")
        return behaviour

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        behaviour = await self._behave()
        if isinstance(behaviour, Response):
            return behaviour
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": _fake_vector(text)}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(text.split()) for text in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _fake_vector(text: str) -> list[float]:
    """A deterministic 8-dimensional vector derived from the text."""
    return [byte / 255.0 for byte in hashlib.sha256(text.encode()).digest()[:8]]


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
    }


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _completion(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for i, (name, arguments) in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(reply)}],
        "usage": _usage(reply),
    }


async def _sse_chunks(reply: Reply, model: str, include_usage: bool):
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> str:
        choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": choices,
            "usage": usage,
        }
        return f"data: {json.dumps(payload)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for word in _pieces(reply.text or ""):
        if reply.chunk_delay:
            await asyncio.sleep(reply.chunk_delay)
        yield chunk({"content": word})
    for i, (name, arguments) in enumerate(reply.tool_calls):
        head = {"index": i, "id": f"call_{i}", "type": "function"}
        yield chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        encoded = json.dumps(arguments)
        for piece in (encoded[: len(encoded) // 2], encoded[len(encoded) // 2 :]):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, finish=_finish_reason(reply))
    if include_usage:
        yield chunk({}, usage=_usage(reply))
    yield "data: [DONE]\n\n"


def _pieces(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to it."""
    pieces, current = [], ""
    for char in text:
        current += char
        if char == " ":
            pieces.append(current)
            current = ""
    return [*pieces, current] if current else pieces
