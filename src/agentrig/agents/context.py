"""``RunContext``: what a run knows about itself while it runs.

Given to instructions functions, guardrails, callbacks and (as ``ToolContext.run``) tools.
It reads through to the run's :class:`~agentrig.agents.state.RunState`, the one place the
run's data lives: the user context (a JSON-serializable dict, deep-copied per run so that
concurrent runs never share it), usage and cost so far, the current agent and the turn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentrig.usage import Usage

if TYPE_CHECKING:
    from agentrig.agents.agent import Agent
    from agentrig.agents.events import RunEvent
    from agentrig.agents.state import RunState
    from agentrig.llm.router import ModelRouter
    from agentrig.tools.base import Tool


@dataclass
class RunContext:
    state: RunState
    registry: Mapping[str, Agent]  # every agent the run may hand off to, by name
    router: ModelRouter | None = None
    hooks: Any = None
    emit: Callable[[RunEvent], None] | None = None  # set while the run is streamed
    mcp_tools: dict[str, dict[str, Tool]] = field(default_factory=dict)  # per agent name

    @property
    def context(self) -> dict[str, Any]:
        return self.state.context

    @property
    def agent(self) -> Agent:
        return self.state.agent

    @property
    def usage(self) -> Usage:
        return self.state.usage

    @property
    def cost_micros(self) -> int:
        return self.state.cost_micros

    @property
    def turn(self) -> int:
        return self.state.turn
