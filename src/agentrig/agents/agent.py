"""``Agent``: instructions, a model, tools and the agents it may hand the conversation to.

An agent is an immutable description; running it is the loop's job. ``model`` is a router
role (``"default"``), a ``"provider/model"``, or any :class:`~agentrig.llm.types.LLMClient`
(such as a ``ScriptedModel``). Handoffs are offered to the model as tools named
``transfer_to_<agent>``; ``as_tool`` offers a whole agent as one tool.

CrewAI's vocabulary is part of the same Agent: ``role``, ``goal`` and ``backstory``, when
set and ``instructions`` is not, render the instructions from ``role_template``;
``allow_delegation`` lets the agent delegate to its crew mates when it runs in a crew.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agentrig.items import FunctionCall, FunctionCallOutput, Item
from agentrig.llm.types import LLMClient, ModelSettings, OutputSchema, ToolSpec
from agentrig.tools.base import Tool, ToolContext, ToolInputError, tool_spec
from agentrig.tools.function_tool import to_output_text

if TYPE_CHECKING:
    from agentrig.agents.context import RunContext
    from agentrig.agents.guardrails import InputGuardrail, OutputGuardrail

Instructions = str | Callable[["RunContext", "Agent"], str | Awaitable[str]] | None
InputFilter = Callable[[list[Item]], list[Item]]


ROLE_TEMPLATE = "You are {role}. {backstory}\nYour personal goal is: {goal}"
"""How ``role``, ``goal`` and ``backstory`` become instructions (CrewAI's wording)."""


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_").lower() or "agent"


@dataclass(frozen=True, eq=False)
class Handoff:
    """Lets the model hand the conversation to ``agent`` by calling ``tool_name``.

    ``agent`` may be an agent's name, resolved when the run hands off (from the agents the
    run knows): that is how two agents hand back and forth although agents are immutable.
    ``input_filter`` rewrites what the next agent sees of the conversation (for example
    :func:`drop_tool_history`); the run's items keep everything."""

    agent: Agent | str
    tool_name: str = ""
    description: str = ""
    input_filter: InputFilter | None = None

    @property
    def agent_name(self) -> str:
        return self.agent if isinstance(self.agent, str) else self.agent.name

    def __post_init__(self) -> None:
        if not self.tool_name:
            object.__setattr__(self, "tool_name", f"transfer_to_{_slug(self.agent_name)}")
        if not self.description:
            about = getattr(self.agent, "description", "")
            about = f": {about}" if about else "."
            object.__setattr__(
                self, "description", f"Hand the conversation to {self.agent_name}{about}"
            )

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.tool_name, description=self.description)


def handoff(
    agent: Agent | str,
    *,
    tool_name: str = "",
    description: str = "",
    input_filter: InputFilter | None = None,
) -> Handoff:
    return Handoff(agent, tool_name, description, input_filter)


def drop_tool_history(items: list[Item]) -> list[Item]:
    """An input filter: the next agent sees the messages but no tool calls or results."""
    return [item for item in items if not isinstance(item, FunctionCall | FunctionCallOutput)]


@dataclass(frozen=True, eq=False)
class Agent:
    """An agent: immutable; change one with :meth:`clone`."""

    name: str
    instructions: Instructions = None
    model: str | LLMClient = "default"
    tools: Sequence[Tool] = ()
    handoffs: Sequence[Agent | Handoff | str] = ()
    output_type: type[BaseModel] | None = None
    model_settings: ModelSettings = field(default_factory=ModelSettings)
    input_guardrails: Sequence[InputGuardrail] = ()
    output_guardrails: Sequence[OutputGuardrail] = ()
    description: str = ""
    mcp_servers: Sequence[Any] = ()
    tool_concurrency: int = 8
    tool_choice: str = "auto"  # for the agent's first model call in a run; "auto" after
    role: str = ""
    goal: str = ""
    backstory: str = ""
    allow_delegation: bool = False
    role_template: str = ROLE_TEMPLATE

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("an agent needs a non-empty name")
        if self.role or self.goal or self.backstory:
            object.__setattr__(self, "_role_instructions", self._render_role())
        for name in ("tools", "handoffs", "input_guardrails", "output_guardrails", "mcp_servers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        handoffs = tuple(h if isinstance(h, Handoff) else Handoff(h) for h in self.handoffs)
        object.__setattr__(self, "handoffs", handoffs)
        names = [tool.name for tool in self.tools] + [h.tool_name for h in handoffs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"agent {self.name!r} has several tools named {duplicates}")
        object.__setattr__(self, "_tools_by_name", {tool.name: tool for tool in self.tools})
        object.__setattr__(self, "_handoffs_by_name", {h.tool_name: h for h in handoffs})
        specs = [tool_spec(tool) for tool in self.tools] + [h.spec for h in handoffs]
        object.__setattr__(self, "_specs", specs)
        object.__setattr__(self, "_output_schema", self._make_output_schema())

    def __repr__(self) -> str:
        return f"Agent({self.name!r})"

    def clone(self, **changes: Any) -> Agent:
        """A copy with ``changes`` applied (the original is unchanged)."""
        return dataclasses.replace(self, **changes)

    def as_tool(
        self, name: str | None = None, description: str | None = None, max_turns: int = 10
    ) -> AgentTool:
        """This agent as a tool: a nested, isolated run without handoffs."""
        return AgentTool(self, name or _slug(self.name), description, max_turns)

    # --- what the loop asks of an agent -------------------------------------------------

    @property
    def effective_instructions(self) -> Instructions:
        """``instructions``, or when there are none, the ones ``role`` and friends render."""
        if self.instructions is not None:
            return self.instructions
        return getattr(self, "_role_instructions", None)

    def _render_role(self) -> str:
        fields = {"role": self.role, "goal": self.goal, "backstory": self.backstory}
        fields["name"] = self.name
        try:
            return self.role_template.format(**fields).strip()
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"agent {self.name!r}: role_template {self.role_template!r} is not a template "
                f"of {{name}}, {{role}}, {{goal}}, {{backstory}} ({exc!r})"
            ) from None

    def tool_named(self, name: str) -> Tool | None:
        return self._tools_by_name.get(name)  # type: ignore[attr-defined]

    def handoff_named(self, name: str) -> Handoff | None:
        return self._handoffs_by_name.get(name)  # type: ignore[attr-defined]

    @property
    def tool_specs(self) -> list[ToolSpec]:
        return self._specs  # type: ignore[attr-defined]

    @property
    def output_schema(self) -> OutputSchema | None:
        return self._output_schema  # type: ignore[attr-defined]

    def _make_output_schema(self) -> OutputSchema | None:
        if self.output_type is None:
            return None
        schema = self.output_type.model_json_schema()
        return OutputSchema(name=_slug(self.output_type.__name__), json_schema=schema, strict=False)

    def reachable(self) -> dict[str, Agent]:
        """This agent and every agent reachable through handoffs, by name."""
        found: dict[str, Agent] = {}
        waiting = [self]
        while waiting:
            agent = waiting.pop()
            if agent.name in found:
                continue
            found[agent.name] = agent
            waiting.extend(h.agent for h in agent.handoffs if not isinstance(h.agent, str))
        return found


class AgentTool:
    """An agent offered as a tool: the model gives it an input; it runs to its answer."""

    needs_approval = False
    timeout: float | None = None
    max_retries = 0
    fail_run = False

    def __init__(self, agent: Agent, name: str, description: str | None, max_turns: int) -> None:
        self.agent = agent.clone(handoffs=())
        self.name = name
        self.description = description or agent.description or f"Ask {agent.name}."
        self.max_turns = max_turns
        self.parameters = {
            "type": "object",
            "properties": {"input": {"type": "string", "description": "What to ask."}},
            "required": ["input"],
            "additionalProperties": False,
        }

    async def invoke(self, ctx: ToolContext, arguments: str) -> str:
        try:
            data = json.loads(arguments or "{}")
            text = data["input"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ToolInputError(
                f"{self.name} takes {{'input': <text>}}, got {arguments}"
            ) from None
        if ctx.run is None:
            raise ToolInputError(f"{self.name} runs an agent, so it needs to be called in a run")
        result = await ctx.run.run_nested(
            self.agent, str(text), context=copy.deepcopy(ctx.context), max_turns=self.max_turns
        )
        return to_output_text(result.final_output)
