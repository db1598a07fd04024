"""Gateway mode (``server.upstream``) against a fake upstream Chat Completions server.

agentrig runs with no provider of its own for the upstream: ``/v1/responses`` (and
``/v1/conversations``) are agentrig's, with inference sent upstream as chat completions;
every other ``/v1/*`` request goes to the upstream unchanged, and its answer comes back
unchanged. The upstream records every request as it arrived on the wire.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentrig.config import load_settings
from agentrig.server.app import create_app
from agentrig.store import Database
from agentrig.store.api_keys import ApiKeyStore
from agentrig.testing.fake_openai_server import Fail, FakeOpenAIServer, Reply
from agentrig.testing.live_server import LiveServer

MODEL = "some-upstream-model"


@dataclass
class Seen:
    """One request as the upstream received it."""

    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v.decode() for k, v in self.headers if k.decode().lower() == name]


class RecordingUpstream(FakeOpenAIServer):
    """The fake Chat Completions server, recording raw requests; other paths echo them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []

    def start(self) -> RecordingUpstream:
        routes = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/{rest:path}", self._echo, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )
        self._live = LiveServer(_Recorder(routes, self.seen), lifespan="off").start()
        self.port = self._live.port
        return self

    async def _echo(self, request: Request) -> Response:
        return JSONResponse(
            {"echo": request.url.path, "body": (await request.body()).decode(errors="replace")},
            status_code=202,
            headers={"x-upstream": "yes", "set-cookie": "upstream=1"},
        )


class _Recorder:
    """ASGI middleware keeping each request's method, raw path, query, headers and body."""

    def __init__(self, app: Any, seen: list[Seen]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append(
            Seen(scope["method"], scope["raw_path"], scope["query_string"], scope["headers"], body)
        )
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()  # the body was read: only a disconnect can come
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@dataclass
class Gateway:
    url: str
    upstream: RecordingUpstream

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.v1, api_key="unused", max_retries=0)

    def last(self) -> Seen:
        return self.upstream.seen[-1]


def gateway_app(database_url: str, upstream_url: str) -> Any:
    """agentrig in gateway mode, with no provider configured for the upstream."""
    settings = load_settings(
        database_url=database_url,
        llm={"max_attempts": 1},
        server={"upstream": upstream_url},
    )
    assert "upstream" not in settings.llm.providers
    return create_app(settings)


@pytest.fixture
def gateway(database_url) -> Iterator[Gateway]:
    with (
        RecordingUpstream() as upstream,
        LiveServer(gateway_app(database_url, upstream.base_url)) as live,
    ):
        yield Gateway(live.url, upstream)


def sse_data(lines: Iterator[str]) -> list[dict]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


# --- /v1/responses: agentrig's, inference upstream ---------------------------------------


def test_responses_go_upstream_as_chat_completions(gateway):
    gateway.upstream.script(Reply(text="Hello from upstream.", prompt_tokens=7))
    client = gateway.openai()
    response = client.responses.create(model=MODEL, input="Hi!", instructions="Be brief.")
    assert response.output_text == "Hello from upstream."
    assert response.model == MODEL and response.usage.input_tokens == 7
    seen = gateway.last()
    assert seen.method == "POST" and seen.raw_path == b"/v1/chat/completions"
    sent = json.loads(seen.body)
    assert sent["model"] == MODEL
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
    ]
    # the gateway adds storage: the response reads back, with its input items
    assert client.responses.retrieve(response.id).output_text == "Hello from upstream."
    items = client.responses.input_items.list(response.id)
    assert [item.content[0].text for item in items.data] == ["Hi!"]


def test_model_names_with_a_slash_go_upstream_whole(gateway):
    gateway.upstream.script(Reply(text="ok"))
    model = "meta-llama/Llama-3.1-8B-Instruct"
    assert gateway.openai().responses.create(model=model, input="x").output_text == "ok"
    assert json.loads(gateway.last().body)["model"] == model


def test_streamed_response_goes_upstream_as_a_streamed_chat_completion(gateway):
    gateway.upstream.script(Reply(text="one two three"))
    client = gateway.openai()
    events = list(client.responses.create(model=MODEL, input="count", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert types.count("response.output_text.delta") == 3
    sent = json.loads(gateway.last().body)
    assert sent["model"] == MODEL and sent["stream"] is True
    final = events[-1].response
    assert final.output_text == "one two three"
    assert client.responses.retrieve(final.id).output_text == "one two three"


def test_previous_response_id_and_store_false(gateway):
    client = gateway.openai()
    gateway.upstream.script(Reply(text="I am Bob."), Reply(text="You asked my name."))
    first = client.responses.create(model=MODEL, input="What is your name?")
    second = client.responses.create(
        model=MODEL, input="What did I ask?", previous_response_id=first.id
    )
    assert second.output_text == "You asked my name."
    sent = [m["content"] for m in json.loads(gateway.last().body)["messages"]]
    assert sent == ["What is your name?", "I am Bob.", "What did I ask?"]
    gateway.upstream.script(Reply(text="not kept"))
    unstored = client.responses.create(model=MODEL, input="x", store=False)
    assert unstored.output_text == "not kept"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="y", previous_response_id=unstored.id)
    assert caught.value.code == "previous_response_not_found"


def test_conversations_are_served_by_the_gateway(gateway):
    client = gateway.openai()
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "remember: blue"}]
    )
    gateway.upstream.script(Reply(text="Blue."))
    client.responses.create(model=MODEL, input="colour?", conversation=conversation.id)
    sent = [m["content"] for m in json.loads(gateway.last().body)["messages"]]
    assert sent == ["remember: blue", "colour?"]
    assert len(list(client.conversations.items.list(conversation.id))) == 3
    paths = {seen.raw_path for seen in gateway.upstream.seen}
    assert paths == {b"/v1/chat/completions"}  # nothing of the conversation was proxied
    # agentrig's own paths are never proxied, whatever the method
    assert httpx.get(f"{gateway.v1}/responses").status_code == 405
    assert httpx.get(f"{gateway.v1}/responses/a/b/c").status_code == 404
    assert httpx.put(f"{gateway.v1}/conversations/{conversation.id}").status_code == 405
    assert {seen.raw_path for seen in gateway.upstream.seen} == paths


def test_upstream_error_on_responses_is_a_502_envelope(gateway):
    gateway.upstream.script(Fail(500, "boom"))
    reply = httpx.post(f"{gateway.v1}/responses", json={"model": MODEL, "input": "x"})
    assert reply.status_code == 502
    assert reply.json()["error"]["code"] == "upstream_error"


# --- every other /v1/* request: proxied unchanged -----------------------------------------


def direct(gateway: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The same request sent straight to the upstream."""
    return httpx.request(method, gateway.upstream.base_url + path, **kwargs)


def test_chat_completions_are_proxied_unchanged(gateway):
    body = b'{"model":"anything-upstream","messages":[{"role":"user","content":"hi"}] ,"n":1}'
    headers = {"content-type": "application/json", "authorization": "Bearer sk-upstream-key"}
    gateway.upstream.script(Reply(text="proxied answer"))
    reply = httpx.post(f"{gateway.v1}/chat/completions", content=body, headers=headers)
    seen = gateway.last()
    assert seen.body == body  # byte for byte, not re-serialized
    assert seen.raw_path == b"/v1/chat/completions"
    assert seen.header("authorization") == ["Bearer sk-upstream-key"]
    assert seen.header("content-length") == [str(len(body))]
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "proxied answer"
    assert reply.json()["model"] == "anything-upstream"  # not routed through agentrig
    gateway.upstream.script(Reply(text="proxied answer"))
    expected = direct(gateway, "POST", "/chat/completions", content=body, headers=headers)
    assert _without_created(reply.content) == _without_created(expected.content)
    assert reply.headers["content-type"] == expected.headers["content-type"]


def _without_created(raw: bytes) -> dict:
    return {k: v for k, v in json.loads(raw).items() if k != "created"}


def test_the_official_client_chat_completions_through_the_gateway(gateway):
    gateway.upstream.script(Reply(text="sdk answer"))
    completion = gateway.openai().chat.completions.create(
        model="whatever-upstream", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "sdk answer"
    assert json.loads(gateway.last().body)["model"] == "whatever-upstream"


def test_streamed_chat_completion_passes_through_chunk_by_chunk(gateway):
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    gateway.upstream.script(Reply(text="slow words here", chunk_delay=0.3))
    arrived: list[tuple[float, bytes]] = []
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", json=body, timeout=30) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        for chunk in reply.iter_raw():
            arrived.append((time.monotonic(), chunk))
    received = b"".join(chunk for _, chunk in arrived)
    # the first chunk (the role) is not held back until the slow words have come
    first_data = next(t for t, chunk in arrived if b"data:" in chunk)
    last_data = arrived[-1][0]
    assert last_data - first_data > 0.6
    gateway.upstream.script(Reply(text="slow words here"))
    expected = direct(gateway, "POST", "/chat/completions", json=body).content
    assert received == expected  # byte for byte (the fake's chunks carry no timestamps)
    assert received.endswith(b"data: [DONE]\n\n")


def test_embeddings_and_models_are_proxied(gateway):
    body = b'{"model": "embedder-upstream", "input": ["a", "b c"]}'
    headers = {"content-type": "application/json"}
    reply = httpx.post(f"{gateway.v1}/embeddings", content=body, headers=headers)
    assert gateway.last().body == body and gateway.last().raw_path == b"/v1/embeddings"
    assert reply.status_code == 200
    assert reply.content == direct(gateway, "POST", "/embeddings", content=body).content
    models = httpx.get(f"{gateway.v1}/models")
    assert models.json() == {"object": "list", "data": [{"id": "fake", "object": "model"}]}
    assert gateway.last().method == "GET" and gateway.last().raw_path == b"/v1/models"
    ids = {model.id for model in gateway.openai().models.list()}
    assert ids == {"fake"}  # the upstream's models, not agentrig's roles


def test_upstream_4xx_comes_back_unchanged(gateway):
    gateway.upstream.script(Fail(422, "model 'x' is not served here"))
    reply = httpx.post(
        f"{gateway.v1}/chat/completions", json={"model": "x", "messages": [{"role": "user"}]}
    )
    assert reply.status_code == 422
    assert reply.json() == {
        "error": {"message": "model 'x' is not served here", "type": "fake", "code": None}
    }
    gateway.upstream.script(Fail(429, "slow down", headers={"retry-after": "7"}))
    limited = httpx.post(f"{gateway.v1}/embeddings", json={"model": "e", "input": "x"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    with pytest.raises(openai.UnprocessableEntityError):
        gateway.upstream.script(Fail(422))
        gateway.openai().chat.completions.create(model="x", messages=[])


def test_query_strings_paths_methods_and_headers_pass_through(gateway):
    url = f"{gateway.v1}/files/org%2Ffile-1/content?b=x+y%20z&a=1&a=2&empty="
    reply = httpx.put(
        url,
        content=b"raw bytes \x00\xff",
        headers=[
            ("authorization", "Bearer sk-up"),
            ("x-custom", "one"),
            ("x-custom", "two"),
            ("openai-organization", "org-1"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "dropped"),
        ],
    )
    seen = gateway.last()
    assert seen.method == "PUT"
    assert seen.raw_path == b"/v1/files/org%2Ffile-1/content"
    assert seen.query == b"b=x+y%20z&a=1&a=2&empty="
    assert seen.body == b"raw bytes \x00\xff"
    assert seen.header("authorization") == ["Bearer sk-up"]
    assert seen.header("x-custom") == ["one", "two"]
    assert seen.header("openai-organization") == ["org-1"]
    assert seen.header("x-hop") == []  # named by Connection: hop-by-hop
    assert reply.status_code == 202 and reply.headers["x-upstream"] == "yes"
    assert reply.headers["set-cookie"] == "upstream=1"
    assert reply.json()["body"] == "raw bytes \x00\ufffd"
    deleted = httpx.delete(f"{gateway.v1}/files/f?x=1")
    assert deleted.status_code == 202 and gateway.last().method == "DELETE"
    assert gateway.last().query == b"x=1" and gateway.last().body == b""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_upstream_down_is_a_502_envelope(database_url):
    down = f"http://127.0.0.1:{_closed_port()}/v1"
    with LiveServer(gateway_app(database_url, down)) as live:
        v1 = live.url + "/v1"
        for method, path, body in (
            ("POST", "/chat/completions", {"model": "m", "messages": []}),
            ("GET", "/models", None),
            ("POST", "/responses", {"model": MODEL, "input": "x"}),
        ):
            reply = httpx.request(method, v1 + path, json=body)
            assert reply.status_code == 502, path
            error = reply.json()["error"]
            assert error["code"] == "upstream_error" and error["type"] == "server_error"
            assert set(error) == {"message", "type", "param", "code"}
        assert httpx.get(live.url + "/health").status_code == 200


async def _create_key(database_url: str) -> str:
    database = Database(database_url)
    try:
        await database.upgrade()
        key, _ = await ApiKeyStore(database).create("gateway")
        return key
    finally:
        await database.aclose()


def test_with_api_keys_the_proxy_checks_the_key_and_keeps_it(database_url):
    """agentrig's key opens the proxy and is not sent on: it is not the upstream's."""
    key = asyncio.run(_create_key(database_url))
    with (
        RecordingUpstream() as upstream,
        LiveServer(gateway_app(database_url, upstream.base_url)) as live,
    ):
        v1 = live.url + "/v1"
        refused = httpx.get(f"{v1}/models")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "missing_api_key"
        wrong = httpx.get(f"{v1}/models", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert upstream.seen == []
        ok = httpx.get(f"{v1}/models", headers={"authorization": f"Bearer {key}", "x-kept": "1"})
        assert ok.status_code == 200 and ok.json()["data"][0]["id"] == "fake"
        assert upstream.seen[-1].header("authorization") == []
        assert upstream.seen[-1].header("x-kept") == ["1"]
        upstream.script(Reply(text="authorized"))
        client = openai.OpenAI(base_url=v1, api_key=key, max_retries=0)
        assert client.responses.create(model=MODEL, input="x").output_text == "authorized"
