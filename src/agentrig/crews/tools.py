"""The tools a crew's YAML names, and the MCP servers its runs hold open.

Besides the registered tools, an agent may list ``knowledge_search`` (the tenant's default
knowledge base) or ``knowledge_search(kb)``, built on a :class:`Knowledge` for one tenant
(without one, a stand-in that says there is nothing to search, so the crew still loads),
and ``mcp:<name>``, a server the crew file declares under ``mcp_servers``. A crew connects
the servers its agents use for each run: :class:`SharedConnections` lets concurrent runs
share one connection, the first connecting and the last closing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

from agentrig.tools import FunctionTool, Tool, ToolInputError

if TYPE_CHECKING:  # the knowledge layer (Qdrant, parsers) is imported by whoever opens one
    from agentrig.knowledge.service import Knowledge
    from agentrig.knowledge.vectors import Hit

KNOWLEDGE_SEARCH = "knowledge_search"
MCP_PREFIX = "mcp:"
_KB_ARGUMENT = re.compile(rf"{KNOWLEDGE_SEARCH}\(\s*([^()\s]+)\s*\)")
_OPTIONS = {"allowed_tools", "cache_tools", "needs_approval", "timeout"}
_DESCRIPTION = (
    "Search the documents of the knowledge base {kb!r}. Returns numbered passages with "
    "their source; cite them by number, like [1]."
)


def knowledge_search_tool(knowledge: Knowledge, tenant: str, kb: str | None = None) -> Tool:
    """A tool searching ``tenant``'s knowledge base ``kb`` (its default one when ``None``),
    named ``knowledge_search`` or ``knowledge_search_<kb>`` so one agent can have several."""
    from agentrig.knowledge.vectors import collection_name

    name = KNOWLEDGE_SEARCH if kb is None else f"{KNOWLEDGE_SEARCH}_{kb}"
    base = kb or knowledge.settings.knowledge.default_kb
    collection_name(base)  # an invalid name fails now, not at the model's first call

    async def knowledge_search(query: str) -> str:
        """Search the knowledge base.

        Args:
            query: What to look for, in a few words.
        """
        if not query.strip():
            raise ToolInputError("query: empty; say what to search for")
        hits = await knowledge.retriever.search(query, tenant=tenant, kb=base)
        return hits_text(hits, query, base)

    return FunctionTool(knowledge_search, name=name, description=_DESCRIPTION.format(kb=base))


def no_knowledge_tool(kb: str | None = None) -> Tool:
    """The knowledge search of a crew built without a :class:`Knowledge` (``knowledge=``):
    named like the real one; it tells the model there is nothing to search."""
    from agentrig.knowledge.vectors import collection_name

    name = KNOWLEDGE_SEARCH if kb is None else f"{KNOWLEDGE_SEARCH}_{kb}"
    base = kb or "default"
    collection_name(base)  # the same invalid names fail as with a knowledge base

    async def knowledge_search(query: str) -> str:
        """Search the knowledge base.

        Args:
            query: What to look for, in a few words.
        """
        return (
            f"No knowledge base is connected, so {base!r} has no documents to search: "
            "answer from what you know."
        )

    return FunctionTool(knowledge_search, name=name, description=_DESCRIPTION.format(kb=base))


def hits_text(hits: Sequence[Hit], query: str, kb: str) -> str:
    """Retrieved chunks as numbered passages, each headed by its source, for the model to cite."""
    if not hits:
        return f"No results in the knowledge base {kb!r} for {query!r}."
    return "\n\n".join(f"[{n}] {_source(hit)}\n{hit.text}" for n, hit in enumerate(hits, 1))


def _source(hit: Hit) -> str:
    """``file.md, page 2 (Heading > Section)`` as the knowledge chat cites (the title when
    there is no heading)."""
    source = str(hit.metadata.get("filename") or hit.document_id)
    if hit.page:
        source += f", page {hit.page}"
    label = hit.heading or hit.metadata.get("title")
    return f"{source} ({label})" if label else source


class MCPServerSpec(BaseModel):
    """A crew file's ``mcp_servers`` entry: ``command`` (with ``args``, ``env``, ``cwd``)
    runs a stdio server, ``url`` (with ``headers``) reaches a Streamable HTTP one."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    allowed_tools: list[str] | None = None
    cache_tools: bool = True
    needs_approval: bool | list[str] = False
    timeout: float | None = 60

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (a stdio server) or url (an HTTP one)")
        stdio, http = ("args", "env", "cwd"), ("headers",)
        wrong = [key for key in (http if self.command else stdio) if getattr(self, key)]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)} do not go with {'command' if self.command else 'url'}"
            )
        return self


def mcp_servers(specs: Mapping[str, MCPServerSpec]) -> dict[str, Any]:
    """The servers ``specs`` describe, by name, not connected. ImportError without ``mcp``."""
    from agentrig.tools.mcp import MCPServerStdio, MCPServerStreamableHTTP

    servers: dict[str, Any] = {}
    for name, spec in specs.items():
        options = spec.model_dump(include=_OPTIONS, exclude_unset=True)  # defaults: the server's
        if isinstance(options.get("needs_approval"), list):
            options["needs_approval"] = set(options["needs_approval"])
        if spec.command is not None:
            servers[name] = MCPServerStdio(
                spec.command, spec.args, spec.env, spec.cwd, name=name, **options
            )
        else:
            assert spec.url is not None  # checked by the spec
            servers[name] = MCPServerStreamableHTTP(spec.url, spec.headers, name=name, **options)
    return servers


class ToolRegistry:
    """What the names in a crew's ``tools:`` lists stand for: registered tools, the knowledge
    search on ``knowledge`` for ``tenant``, and the declared MCP servers. Resolving raises
    ``ValueError`` with a message for the loader to place in its file."""

    def __init__(
        self,
        tools: Mapping[str, Tool],
        *,
        knowledge: Knowledge | None = None,
        tenant: str = "default",
        servers: Mapping[str, Any] | None = None,
    ) -> None:
        self.tools = dict(tools)
        self.knowledge = knowledge
        self.tenant = tenant
        self.servers = dict(servers or {})

    def names(self) -> list[str]:
        """What may be named, for error messages."""
        servers = [MCP_PREFIX + name for name in sorted(self.servers)]
        return [*sorted(self.tools), KNOWLEDGE_SEARCH, f"{KNOWLEDGE_SEARCH}(<kb>)", *servers]

    def resolve(self, name: str) -> Tool | Any:
        """The tool ``name`` stands for, or the MCP server of ``mcp:<name>``."""
        if name.startswith(MCP_PREFIX):
            return self.server(name[len(MCP_PREFIX) :])
        return self.tool(name)

    def tool(self, name: str) -> Tool:
        found = self.tools.get(name)
        if found is not None:
            return found
        if name.startswith(MCP_PREFIX):
            raise ValueError(f"{name} is an MCP server: list it in an agent's tools")
        match = _KB_ARGUMENT.fullmatch(name)
        if name != KNOWLEDGE_SEARCH and match is None:
            raise ValueError(
                f"unknown tool {name!r}; known: {self.names()} (register yours with "
                "from_yaml(tools=...))"
            )
        kb = match.group(1) if match else None
        if self.knowledge is None:  # listed, shown, or run without a knowledge base
            found = self.tools[name] = no_knowledge_tool(kb)
        else:
            found = self.tools[name] = knowledge_search_tool(self.knowledge, self.tenant, kb)
        return found

    def server(self, name: str) -> Any:
        server = self.servers.get(name)
        if server is None:
            declared = sorted(self.servers) or "none"
            raise ValueError(
                f"unknown MCP server {name!r}; the crew file's mcp_servers declares {declared}"
            )
        return server


class SharedConnections:
    """Connects ``servers`` while any run uses them: the first user connects those not
    connected yet, the last closes those it connected. Servers the caller connected stay
    as they are."""

    def __init__(self, servers: Sequence[Any]) -> None:
        self.servers = list(servers)
        self.users = 0
        self._owned: list[Any] = []
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[None]:
        async with self._lock:
            try:
                for server in self.servers:
                    if not server.connected:
                        await server.connect()
                        if server not in self._owned:
                            self._owned.append(server)
            except BaseException:
                if self.users == 0:
                    await self._close()
                raise
            self.users += 1
        try:
            yield
        finally:
            self.users -= 1  # before any await: a cancelled run still lets go
            if self.users == 0:
                async with self._lock:
                    if self.users == 0:
                        await self._close()

    async def _close(self) -> None:
        owned, self._owned = self._owned, []
        for server in owned:
            await server.aclose()
