"""Sessions keep a conversation between runs: its items, the agent that last answered,
and the tools' persistent state.

Every backend stores the same serialization: each item as its Responses-API JSON object
(``item.to_json()``), one entry per item in order, and the session's metadata as one JSON
object ``{"current_agent": str | null, "tool_state": {tool name: {...}}}``. A session
written by one backend can therefore be copied to another item by item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from agentrig.items import Item


class SessionMeta(BaseModel):
    current_agent: str | None = None
    tool_state: dict[str, dict[str, Any]] = Field(default_factory=dict)


@runtime_checkable
class Session(Protocol):
    session_id: str

    async def get_items(self, limit: int | None = None) -> list[Item]:
        """The items in order; with ``limit``, only the last ``limit`` of them."""

    async def add_items(self, items: Sequence[Item]) -> None:
        """Append items at the end, in order."""

    async def pop_item(self) -> Item | None:
        """Remove and return the last item (``None`` when empty)."""

    async def clear(self) -> None:
        """Remove every item and the metadata."""

    async def get_meta(self) -> SessionMeta:
        """The current agent and tool state (defaults when never set)."""

    async def set_meta(self, meta: SessionMeta) -> None:
        """Replace the current agent and tool state."""
