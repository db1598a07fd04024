"""MCP servers' tools for an agent, against a real MCP server: the fixture script over stdio,
and the same server as a Streamable HTTP app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

import uvicorn
from mcp import ClientSession, types

from agentrig.tools.base import Tool, ToolContext, ToolError, ToolInputError, tool_spec
from agentrig.tools.mcp import (
    MCPServer,
    MCPServerStdio,
    MCPServerStreamableHTTP,
    MCPTool,
    content_text,
    object_schema,
    result_text,
)
from tests.tools.mcp_server_fixture import build_server

FIXTURE_SCRIPT = Path(__file__).with_name("mcp_server_fixture.py")
FIXTURE_TOOLS = ["add", "echo", "fail", "secret", "pid", "slow", "picture", "stats"]
CTX = ToolContext(context={})


def child_processes() -> set[int]:
    """Pids of this process's children (from /proc on Linux), to prove none is left behind."""
    children: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid():
            children.add(int(stat.parent.name))
    return children


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    before = child_processes()
    yield
    assert child_processes() - before == set()


class HTTPServer:
    """The fixture server's Streamable HTTP app under uvicorn in a thread, on a free port."""

    def __init__(self) -> None:
        self.request_headers: list[dict[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/mcp"
        app = build_server().streamable_http_app()

        async def recording_app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.request_headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
            await app(scope, receive, send)

        config = uvicorn.Config(recording_app, log_level="critical", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the MCP HTTP server did not start"
            time.sleep(0.01)

    def stop(self, *, force: bool = False) -> None:
        self.server.should_exit = True
        self.server.force_exit = force
        self.thread.join(timeout=10)
        self.sock.close()
        assert not self.thread.is_alive(), "the MCP HTTP server did not stop"


@contextmanager
def serving_http() -> Iterator[HTTPServer]:
    server = HTTPServer()
    server.start()
    try:
        yield server
    finally:
        if server.thread.is_alive():
            server.stop()


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    with serving_http() as server:
        yield server


def stdio_server(**options: Any) -> MCPServerStdio:
    return MCPServerStdio(sys.executable, [str(FIXTURE_SCRIPT)], name="fixture", **options)


MakeServer = Callable[..., MCPServer]


@pytest.fixture(params=["stdio", "http"])
def make_server(request: pytest.FixtureRequest) -> MakeServer:
    """Builds an unconnected server of either transport, with the given options."""
    if request.param == "stdio":
        return stdio_server
    http = request.getfixturevalue("http_server")
    return lambda **options: MCPServerStreamableHTTP(http.url, name="fixture", **options)


@pytest.fixture
def make_http_server(http_server: HTTPServer) -> MakeServer:
    """For what does not depend on the transport: HTTP connects faster than a new process."""
    return lambda **options: MCPServerStreamableHTTP(http_server.url, name="fixture", **options)


def by_name(tools: list[MCPTool]) -> dict[str, MCPTool]:
    return {tool.name: tool for tool in tools}


# --- listing tools -------------------------------------------------------------------------


async def test_list_tools_gives_names_descriptions_and_object_schemas(make_server: MakeServer):
    async with make_server() as server:
        tools = by_name(await server.list_tools())

    assert sorted(tools) == sorted(FIXTURE_TOOLS)
    add = tools["add"]
    assert isinstance(add, Tool)
    assert add.description == "Add two integers."
    assert add.parameters["type"] == "object"
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert sorted(add.parameters["required"]) == ["a", "b"]
    assert tools["fail"].parameters["properties"] == {}
    assert tool_spec(add).name == "add"
    assert (add.needs_approval, add.timeout, add.max_retries, add.fail_run) == (
        False,
        60,
        0,
        False,
    )


async def test_allowed_tools_hide_the_others(make_http_server: MakeServer):
    async with make_http_server(allowed_tools=["add", "echo"]) as server:
        names = [tool.name for tool in await server.list_tools()]
    assert sorted(names) == ["add", "echo"]


async def test_an_allowed_tool_the_server_lacks_is_named_in_the_error(make_http_server: MakeServer):
    async with make_http_server(allowed_tools=["add", "delete_everything"]) as server:
        with pytest.raises(ToolError) as caught:
            await server.list_tools()
    message = str(caught.value)
    assert "'delete_everything'" in message
    assert "'fixture'" in message
    assert "add, echo, fail, picture, pid, secret, slow, stats" in message


async def test_needs_approval_for_named_tools_or_all(make_http_server: MakeServer):
    async with make_http_server(needs_approval={"echo"}, timeout=5) as server:
        tools = by_name(await server.list_tools())
    assert [name for name, tool in tools.items() if tool.needs_approval] == ["echo"]
    assert {tool.timeout for tool in tools.values()} == {5}

    async with make_http_server(needs_approval=True) as server:
        assert all(tool.needs_approval for tool in await server.list_tools())


@pytest.fixture
def list_tools_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts ``tools/list`` requests that reach the SDK's session."""
    calls: list[int] = []
    original = ClientSession.list_tools

    async def counting(self: ClientSession, **kwargs: Any) -> types.ListToolsResult:
        calls.append(1)
        return await original(self, **kwargs)

    monkeypatch.setattr(ClientSession, "list_tools", counting)
    return calls


async def test_tools_are_listed_once_until_the_cache_is_invalidated(
    make_http_server: MakeServer, list_tools_calls: list[int]
):
    async with make_http_server() as server:
        first = await server.list_tools()
        second = await server.list_tools()
        assert len(list_tools_calls) == 1
        assert [a is b for a, b in zip(first, second, strict=True)] == [True] * len(first)

        server.invalidate_tools_cache()
        third = await server.list_tools()
        assert len(list_tools_calls) == 2
        assert third[0] is not first[0]


async def test_without_cache_every_listing_asks_the_server(
    make_http_server: MakeServer, list_tools_calls: list[int]
):
    async with make_http_server(cache_tools=False) as server:
        await server.list_tools()
        await server.list_tools()
    assert len(list_tools_calls) == 2


# --- calling tools -------------------------------------------------------------------------


async def test_invoke_returns_the_tools_text(make_server: MakeServer):
    async with make_server() as server:
        tools = by_name(await server.list_tools())
        assert await tools["add"].invoke(CTX, '{"a": 2, "b": 3}') == "5"
        assert await tools["echo"].invoke(CTX, json.dumps({"text": "héllo\nworld"})) == (
            "héllo\nworld"
        )


async def test_non_text_results_are_described_or_dumped(make_server: MakeServer):
    async with make_server() as server:
        tools = by_name(await server.list_tools())
        assert await tools["picture"].invoke(CTX, "") == "[image: image/png]"
        assert json.loads(await tools["stats"].invoke(CTX, "{}")) == {"count": 3, "unit": "items"}


async def test_a_failing_tool_raises_tool_error_with_its_message(make_server: MakeServer):
    async with make_server() as server:
        tools = by_name(await server.list_tools())
        with pytest.raises(ToolError, match="the fixture tool failed on purpose"):
            await tools["fail"].invoke(CTX, "{}")
        with pytest.raises(ToolError, match="valid integer"):
            await tools["add"].invoke(CTX, '{"a": "two", "b": 3}')
        # The session survives a tool's failure.
        assert await tools["add"].invoke(CTX, '{"a": 1, "b": 1}') == "2"


async def test_a_call_over_its_timeout_fails_and_the_session_survives(
    make_http_server: MakeServer,
):
    async with make_http_server(timeout=0.3) as server:
        tools = by_name(await server.list_tools())
        started = time.monotonic()
        with pytest.raises(ToolError, match=r"'fixture': calling 'slow' failed: .*timed out"):
            await tools["slow"].invoke(CTX, '{"seconds": 30}')
        assert time.monotonic() - started < 5
        assert await tools["slow"].invoke(CTX, '{"seconds": 0}') == "done"


async def test_bad_json_arguments_raise_tool_input_error(make_http_server: MakeServer):
    async with make_http_server() as server:
        add = by_name(await server.list_tools())["add"]
        with pytest.raises(ToolInputError, match="not valid JSON"):
            await add.invoke(CTX, '{"a": 2, "b": ')
        with pytest.raises(ToolInputError, match="JSON object, not list"):
            await add.invoke(CTX, "[2, 3]")


# --- lifecycle -----------------------------------------------------------------------------


async def test_use_before_connect_or_after_close_is_a_clear_error(make_server: MakeServer):
    server = make_server()
    assert not server.connected
    with pytest.raises(ToolError, match=r"'fixture' is not connected.*async with server"):
        await server.list_tools()

    await server.connect()
    assert server.connected
    add = by_name(await server.list_tools())["add"]
    await server.aclose()
    assert not server.connected
    with pytest.raises(ToolError, match="'fixture' is not connected"):
        await add.invoke(CTX, '{"a": 1, "b": 2}')


async def test_aclose_stops_the_stdio_process():
    server = stdio_server()
    await server.connect()
    pid = int(await by_name(await server.list_tools())["pid"].invoke(CTX, ""))
    assert pid in child_processes()

    await server.aclose()
    assert pid not in child_processes()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    await server.aclose()  # closing twice is harmless


async def test_connect_and_close_may_run_in_different_tasks():
    server = stdio_server()
    await asyncio.create_task(server.connect())
    pid = int(await by_name(await server.list_tools())["pid"].invoke(CTX, ""))
    await asyncio.create_task(server.aclose())
    assert pid not in child_processes()


async def test_the_context_manager_closes_after_an_error_in_its_body():
    with pytest.raises(RuntimeError, match="boom"):
        async with stdio_server() as server:
            pid = int(await by_name(await server.list_tools())["pid"].invoke(CTX, ""))
            raise RuntimeError("boom")
    assert pid not in child_processes()


async def test_a_dead_stdio_server_gives_a_tool_error_naming_it():
    async with stdio_server() as server:
        tools = by_name(await server.list_tools())
        os.kill(int(await tools["pid"].invoke(CTX, "")), signal.SIGKILL)
        with pytest.raises(ToolError, match="MCP server 'fixture': calling 'echo' failed"):
            await tools["echo"].invoke(CTX, '{"text": "anyone there?"}')


async def test_a_stopped_http_server_gives_a_tool_error_naming_it():
    with serving_http() as http:
        async with MCPServerStreamableHTTP(http.url, name="remote") as server:
            echo = by_name(await server.list_tools())["echo"]
            http.stop(force=True)
            with pytest.raises(ToolError, match="MCP server 'remote': calling 'echo' failed"):
                await echo.invoke(CTX, '{"text": "anyone there?"}')


async def test_a_server_that_never_answers_times_out_or_can_be_cancelled():
    silent = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    server = MCPServerStdio(silent[0], silent[1:], name="silent", timeout=0.3)
    with pytest.raises(ToolError, match=r"'silent': could not connect: .*timed out"):
        await server.connect()

    server = MCPServerStdio(silent[0], silent[1:], timeout=None)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(server.connect(), 0.3)
    assert not server.connected


async def test_connection_failures_are_tool_errors():
    with pytest.raises(ToolError, match="'nothing': could not connect: FileNotFoundError"):
        await MCPServerStdio("/nonexistent/mcp-server", name="nothing").connect()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    sock.close()  # nothing listens there now
    server = MCPServerStreamableHTTP(url)
    with pytest.raises(ToolError, match=f"'{url}': could not connect: ConnectError"):
        await server.connect()
    assert not server.connected


async def test_http_headers_reach_the_server(http_server: HTTPServer):
    headers = {"Authorization": "Bearer test-token"}
    async with MCPServerStreamableHTTP(http_server.url, headers=headers) as server:
        await server.list_tools()
    assert http_server.request_headers
    assert {h.get("authorization") for h in http_server.request_headers} == {"Bearer test-token"}


# --- converting results --------------------------------------------------------------------


def test_text_contents_are_joined_and_win_over_structured_content():
    result = types.CallToolResult(
        content=[types.TextContent(text="one"), types.TextContent(text="two")],
        structured_content={"ignored": True},
    )
    assert result_text(result) == "one\ntwo"


def test_resources_and_audio_are_described():
    blob = types.BlobResourceContents(uri="file:///a.bin", blob="AAAA", mime_type="x/bin")
    text = types.TextResourceContents(uri="file:///a.txt", text="inside")
    assert content_text(types.EmbeddedResource(resource=text)) == "inside"
    assert content_text(types.EmbeddedResource(resource=blob)) == "[resource: file:///a.bin]"
    link = types.ResourceLink(name="doc", uri="https://example.org/doc")
    assert content_text(link) == "[resource link: https://example.org/doc]"
    audio = types.AudioContent(data="AAAA", mime_type="audio/wav")
    assert content_text(audio) == "[audio: audio/wav]"


def test_schemas_become_object_schemas_with_properties():
    assert object_schema({}) == {"type": "object", "properties": {}}
    schema = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    assert object_schema(schema) == schema


async def test_an_agent_calls_the_tools_of_an_mcp_server():
    from agentrig import Agent, Runner
    from agentrig.testing import ScriptedModel, text, tool_call

    model = ScriptedModel(
        [[tool_call("add", a=2, b=3), tool_call("fail")], text("5, and one failed")]
    )
    async with stdio_server(allowed_tools=["add", "fail"]) as server:
        agent = Agent(name="mcp_user", model=model, mcp_servers=[server])
        result = await Runner.run(agent, "add 2 and 3")
    assert [t.name for t in model.requests[0].tools] == ["add", "fail"]
    outputs = [item.output for item in result.new_items if item.type == "function_call_output"]
    assert outputs[0] == "5"
    assert outputs[1].startswith("Error: fail failed: ToolError")
    assert result.final_output == "5, and one failed"


async def test_an_mcp_tool_clashing_with_an_agent_tool_is_refused():
    from agentrig import Agent, Runner, tool
    from agentrig.errors import AgentrigError
    from agentrig.testing import ScriptedModel, text

    @tool
    def echo(text: str) -> str:
        return text

    async with stdio_server(allowed_tools=["echo"]) as server:
        agent = Agent(
            name="a", model=ScriptedModel([text("x")]), tools=[echo], mcp_servers=[server]
        )
        with pytest.raises(AgentrigError, match="MCP tool 'echo' clashes"):
            await Runner.run(agent, "hi")
