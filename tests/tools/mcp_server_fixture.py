"""A small real MCP server for the tests: run as a script it serves stdio; ``build_server()``
gives the same server for a Streamable HTTP app."""

from __future__ import annotations

import os

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent


def build_server() -> MCPServer:
    server = MCPServer("fixture", log_level="ERROR")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return text

    @server.tool()
    def fail() -> str:
        """Always fails, with a message for the client."""
        raise ToolError("the fixture tool failed on purpose")

    @server.tool()
    def secret() -> str:
        """A tool an allow-list should hide."""
        return "the secret"

    @server.tool()
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        await anyio.sleep(seconds)
        return "done"

    @server.tool()
    def picture() -> CallToolResult:
        """An image and no text."""
        return CallToolResult(content=[ImageContent(data="iVBORw0KGgo=", mime_type="image/png")])

    @server.tool()
    def stats() -> CallToolResult:
        """Structured content and no text."""
        return CallToolResult(content=[], structured_content={"count": 3, "unit": "items"})

    return server


if __name__ == "__main__":
    build_server().run()
