"""What the agent loop needs of a tool, whatever made it: a decorated function, an MCP
server's tool, or an agent exposed as a tool.

A tool has a name, a description and a JSON schema of its arguments, and is invoked with
a :class:`ToolContext` and the model's JSON arguments; it returns the text given back to
the model. Bad arguments raise :class:`ToolInputError`, which the loop reports to the
model so it can correct itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentrig.errors import AgentrigError
from agentrig.llm.types import ToolSpec


class ToolError(AgentrigError):
    """A tool failed; the message is what the model is told."""


class ToolInputError(ToolError):
    """The model's arguments do not match the tool's schema."""


@dataclass
class ToolContext:
    """What a tool may know about the call it serves.

    ``context`` is the run's user context (a JSON-serializable dict, private to the run);
    ``state`` is this tool's persistent state, kept with the run and its session;
    ``call_id`` identifies the model's call; ``agent`` names the calling agent; ``retry``
    counts earlier failed attempts of this call; ``run`` is the loop's run context.
    """

    context: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""
    agent: str = ""
    retry: int = 0
    run: Any = None


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]
    needs_approval: bool
    timeout: float | None
    max_retries: int
    fail_run: bool  # an error fails the run instead of being reported to the model

    async def invoke(self, ctx: ToolContext, arguments: str) -> str: ...


def tool_spec(tool: Tool) -> ToolSpec:
    """The part of a tool the model sees."""
    return ToolSpec(name=tool.name, description=tool.description, parameters=tool.parameters)
