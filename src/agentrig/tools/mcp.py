"""Give an agent the tools of an MCP (Model Context Protocol) server, on the official ``mcp`` SDK.

MCP servers publish tools (files, browsers, databases, SaaS APIs) for any client; this module
makes them agent tools. :class:`MCPServerStdio` runs a server as a subprocess and
:class:`MCPServerStreamableHTTP` talks to one at a URL. Each holds one MCP session while
connected (``async with server:``); ``await server.list_tools()`` gives its tools as
:class:`MCPTool`, which implement the loop's :class:`~agentrig.tools.base.Tool` protocol, and
the server's tool errors and transport failures reach the model as :class:`ToolError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypedDict, TypeVar, Unpack

try:
    import httpx2
    from mcp import ClientSession, StdioServerParameters, types
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
except ImportError as exc:  # pragma: no cover
    raise ImportError("MCP support needs the mcp extra: pip install 'agentrig[mcp]'") from exc

from agentrig.tools.base import ToolContext, ToolError, ToolInputError

__all__ = ["MCPServer", "MCPServerStdio", "MCPServerStreamableHTTP", "MCPTool", "ServerOptions"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Streams = AbstractAsyncContextManager[Any]


@dataclass
class MCPTool:
    """One tool of a connected MCP server, as the agent loop sees it."""

    name: str
    description: str
    parameters: dict[str, Any]
    server: MCPServer = field(repr=False)
    needs_approval: bool = False
    timeout: float | None = 60
    max_retries: int = 0
    fail_run: bool = False

    async def invoke(self, ctx: ToolContext, arguments: str) -> str:
        result = await self.server.call_tool(self.name, parse_arguments(arguments), self.timeout)
        text = result_text(result)
        if result.is_error:
            raise ToolError(text or f"MCP tool {self.name!r} failed without a message")
        return text


class ServerOptions(TypedDict, total=False):
    """The options both transports take.

    ``name`` names the server in errors (default: the command or URL); ``allowed_tools`` keeps
    only these tools (``None``: all); ``cache_tools`` lists the tools once per connection;
    ``needs_approval`` is for every tool or a set of tool names; ``timeout`` bounds each
    request to the server, the handshake and tool calls included (seconds, ``None``: none).
    """

    name: str | None
    allowed_tools: list[str] | None
    cache_tools: bool
    needs_approval: bool | set[str]
    timeout: float | None


class MCPServer:
    """What both transports share: the session's lifetime, the tool list and tool calls."""

    def __init__(
        self,
        default_name: str,
        *,
        name: str | None = None,
        allowed_tools: list[str] | None = None,
        cache_tools: bool = True,
        needs_approval: bool | set[str] = False,
        timeout: float | None = 60,
    ) -> None:
        self.name = name or default_name
        self.allowed_tools = allowed_tools
        self.cache_tools = cache_tools
        self.needs_approval = needs_approval
        self.timeout = timeout
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._session: ClientSession | None = None
        self._tools: list[MCPTool] | None = None

    def _transport(self, stack: AsyncExitStack) -> Streams:
        """The SDK's transport context manager, yielding ``(read_stream, write_stream)``."""
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        """Between a successful :meth:`connect` and :meth:`aclose`."""
        return self._session is not None

    async def connect(self) -> None:
        """Start the transport and run the MCP ``initialize`` handshake."""
        if self._task is not None:
            return
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        task = self._task = asyncio.create_task(self._hold_session(ready, self._stop))
        try:
            self._session = await ready
        except BaseException as exc:
            task.cancel()  # the handshake may still be waiting for the server
            await self.aclose()
            if isinstance(exc, Exception):
                message = f"MCP server {self.name!r}: could not connect: {describe(exc)}"
                raise ToolError(message) from exc
            raise

    async def _hold_session(
        self, ready: asyncio.Future[ClientSession], stop: asyncio.Event
    ) -> None:
        """The session's own task owns the SDK's context managers (and their task groups), so
        a transport's crash cannot cancel the caller's task, and any task may close the server."""
        try:
            async with AsyncExitStack() as stack:
                streams = await stack.enter_async_context(self._transport(stack))
                session = ClientSession(*streams, read_timeout_seconds=self.timeout)
                await stack.enter_async_context(session)
                await session.initialize()
                if not ready.done():
                    ready.set_result(session)
                await stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("MCP server %r: connection lost: %s", self.name, describe(exc))
        finally:
            if not ready.done():
                ready.cancel()

    async def aclose(self) -> None:
        """Close the session and the transport (stopping a stdio server's process)."""
        task, self._task, self._session = self._task, None, None
        self.invalidate_tools_cache()
        if task is not None and self._stop is not None:
            self._stop.set()
            await asyncio.wait([task])  # a cancelled caller leaves the shutdown running

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def list_tools(self) -> list[MCPTool]:
        """The server's tools allowed by ``allowed_tools``; cached when ``cache_tools``."""
        if self._tools is not None:
            return list(self._tools)
        tools = [self._wrap(tool) for tool in self._allowed(await self._fetch_tools())]
        if self.cache_tools:
            self._tools = tools
        return list(tools)

    def invalidate_tools_cache(self) -> None:
        self._tools = None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], timeout: float | None = None
    ) -> types.CallToolResult:
        session = self._require_session()
        return await self._request(
            f"calling {name!r}", session.call_tool(name, arguments, read_timeout_seconds=timeout)
        )

    async def _fetch_tools(self) -> list[types.Tool]:
        session = self._require_session()
        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await self._request("listing tools", session.list_tools(params=params))
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                return tools

    def _allowed(self, tools: list[types.Tool]) -> list[types.Tool]:
        if self.allowed_tools is None:
            return tools
        available = {tool.name for tool in tools}
        missing = [name for name in self.allowed_tools if name not in available]
        if missing:
            raise ToolError(
                f"MCP server {self.name!r} has no tool named {', '.join(map(repr, missing))}; "
                f"it has: {', '.join(sorted(available)) or 'no tools'}"
            )
        return [tool for tool in tools if tool.name in self.allowed_tools]

    def _wrap(self, tool: types.Tool) -> MCPTool:
        approval = self.needs_approval
        return MCPTool(
            name=tool.name,
            description=tool.description or "",
            parameters=object_schema(tool.input_schema),
            server=self,
            needs_approval=approval if isinstance(approval, bool) else tool.name in approval,
            timeout=self.timeout,
        )

    def _require_session(self) -> ClientSession:
        if self._session is None:
            raise ToolError(
                f"MCP server {self.name!r} is not connected: "
                "use `async with server:` or `await server.connect()` first"
            )
        return self._session

    async def _request(self, what: str, request: Awaitable[T]) -> T:
        try:
            return await request
        except Exception as exc:
            raise ToolError(f"MCP server {self.name!r}: {what} failed: {describe(exc)}") from exc


class MCPServerStdio(MCPServer):
    """An MCP server run as a subprocess speaking MCP on its stdin and stdout."""

    def __init__(
        self,
        command: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        **options: Unpack[ServerOptions],
    ) -> None:
        super().__init__(Path(command).name, **options)
        self.params = StdioServerParameters(command=command, args=args or [], env=env, cwd=cwd)

    def _transport(self, stack: AsyncExitStack) -> Streams:
        return stdio_client(self.params)


class MCPServerStreamableHTTP(MCPServer):
    """An MCP server at a URL, over the Streamable HTTP transport."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        **options: Unpack[ServerOptions],
    ) -> None:
        super().__init__(url, **options)
        self.url = url
        self.headers = headers or {}

    def _transport(self, stack: AsyncExitStack) -> Streams:
        # The SDK's defaults: a server may hold a response stream open for minutes.
        client = httpx2.AsyncClient(headers=self.headers, timeout=httpx2.Timeout(30, read=300))
        stack.push_async_callback(client.aclose)
        return streamable_http_client(self.url, http_client=client)


def describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # a task group's failure
        exc = exc.exceptions[0]
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def parse_arguments(arguments: str) -> dict[str, Any]:
    """The model's JSON arguments as a dict; no arguments at all means ``{}``."""
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise ToolInputError(f"arguments are not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ToolInputError(f"arguments must be a JSON object, not {type(parsed).__name__}")
    return parsed


def object_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    """An MCP input schema as an object schema with ``properties``, as models expect."""
    return {"type": "object", "properties": {}, **(schema or {})}


def result_text(result: types.CallToolResult) -> str:
    """The text given back to the model: the text contents, else the structured content."""
    parts = [content_text(block) for block in result.content]
    has_text = any(isinstance(block, types.TextContent) for block in result.content)
    if not has_text and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def content_text(block: types.ContentBlock) -> str:
    """One content block as text; what the model cannot read is described."""
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        return f"[{block.type}: {block.mime_type}]"
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, types.TextResourceContents):
            return resource.text
        return f"[resource: {resource.uri}]"
    if isinstance(block, types.ResourceLink):
        return f"[resource link: {block.uri}]"
    return f"[{block.type}]"  # pragma: no cover - a content type newer than this module
