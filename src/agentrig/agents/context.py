"""``RunContext``: what a run knows about itself while it runs.

Given to instructions functions, guardrails, callbacks and (as ``ToolContext.run``) tools.
It reads through to the run's :class:`~agentrig.agents.state.RunState`, the one place the
run's data lives: the user context (a JSON-serializable dict, deep-copied per run so that
concurrent runs never share it), usage and cost so far, the current agent and the turn.

``nested`` is the seam to the runner: agents as tools and agent guardrails start their
nested runs through :meth:`RunContext.run_nested`, which the runner fills in, so the data
the runtime is made of never imports the code that drives it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentrig.errors import AgentrigError
from agentrig.usage import Usage

if TYPE_CHECKING:
    from agentrig.agents.agent import Agent
    from agentrig.agents.events import RunEvent
    from agentrig.agents.result import RunResult
    from agentrig.agents.state import RunState
    from agentrig.llm.router import ModelRouter
    from agentrig.tools.base import Tool


NestedRun = Callable[..., Awaitable["RunResult"]]


@dataclass
class RunContext:
    state: RunState
    registry: Mapping[str, Agent]  # every agent the run may hand off to, by name
    router: ModelRouter | None = None
    hooks: Any = None
    emit: Callable[[RunEvent], None] | None = None  # set while the run is streamed
    mcp_tools: dict[str, dict[str, Tool]] = field(default_factory=dict)  # per agent name
    nested: NestedRun | None = None  # the runner's run_nested

    async def run_nested(
        self, agent: Agent, input: str, *, context: dict[str, Any], max_turns: int
    ) -> RunResult:
        """Run ``agent`` on ``input`` in its own conversation; usage rolls up to this run."""
        if self.nested is None:
            raise AgentrigError(
                f"this RunContext cannot start the nested run of agent {agent.name!r}: it was "
                "not made by Runner (give RunContext(nested=...) when building one by hand)"
            )
        return await self.nested(agent, input, parent=self, context=context, max_turns=max_turns)

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
