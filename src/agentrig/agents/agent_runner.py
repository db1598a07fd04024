"""``AgentRunner``: the long-lived entry point of an application.

It holds an immutable registry of agents (the first is the entry), keeps one session per
conversation, and continues each conversation with the agent that last answered in it
(from the items' attribution). Runs of one conversation are serialized; runs of different
conversations go on concurrently. ``AgentRunner.from_yaml`` declares the agents in YAML.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentrig.agents.agent import Agent, Handoff
from agentrig.agents.result import RunResult
from agentrig.agents.runner import Runner
from agentrig.errors import ConfigError
from agentrig.items import Item
from agentrig.llm.router import ModelRouter
from agentrig.llm.types import ModelSettings
from agentrig.sessions.base import Session
from agentrig.sessions.memory import InMemorySession
from agentrig.tools.base import Tool
from agentrig.tools.calculator import calculator

BUILTIN_TOOLS: dict[str, Tool] = {"calculator": calculator}


class AgentRunner:
    """Runs conversations against a fixed set of agents."""

    def __init__(
        self,
        agents: Sequence[Agent],
        *,
        sessions: Callable[[str], Session] | None = None,
        router: ModelRouter | None = None,
        hooks: Any = None,
        max_turns: int = 10,
    ) -> None:
        if not agents:
            raise ValueError("AgentRunner needs at least one agent")
        registry: dict[str, Agent] = {}
        for agent in agents:
            for name, found in agent.reachable().items():
                if registry.get(name, found) is not found:
                    raise ValueError(f"two different agents are named {name!r}")
                registry[name] = found
        self.agents: Mapping[str, Agent] = MappingProxyType(registry)
        self.entry = agents[0]
        self.router = router
        self.hooks = hooks
        self.max_turns = max_turns
        self._make_session = sessions or InMemorySession
        self._sessions: dict[str, Session] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def session(self, conversation_id: str) -> Session:
        """The session of a conversation (made on first use)."""
        session = self._sessions.get(conversation_id)
        if session is None:
            session = self._sessions[conversation_id] = self._make_session(conversation_id)
        return session

    async def run(
        self,
        input: str | Sequence[Item | dict[str, Any]],
        *,
        conversation_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        max_turns: int | None = None,
    ) -> RunResult:
        """Continue ``conversation_id`` (a new one if ``None``) with ``input``."""
        conversation_id = conversation_id or secrets.token_hex(12)
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            result = await Runner.run(
                self.entry,
                input,
                context=context,
                session=self.session(conversation_id),
                max_turns=max_turns or self.max_turns,
                hooks=self.hooks,
                router=self.router,
                registry=self.agents,
            )
        result.conversation_id = conversation_id
        return result

    @classmethod
    def from_yaml(
        cls,
        path: str | Path,
        *,
        tools: Mapping[str, Tool] | Sequence[Tool] = (),
        **options: Any,
    ) -> AgentRunner:
        """Agents declared in YAML; ``tools`` are the tools the file may name (by name),
        besides the built-in ``calculator``."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
            spec = _AgentsFile.model_validate(data)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read agents from {path}: {exc}") from None
        except ValidationError as exc:
            raise ConfigError(f"invalid agents file {path}: {exc}") from None
        known = dict(BUILTIN_TOOLS)
        known.update(tools if isinstance(tools, Mapping) else {t.name: t for t in tools})
        names = {agent.name for agent in spec.agents}
        agents = [_build(agent, known, names, path) for agent in spec.agents]
        return cls(agents, **options)


class _AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    instructions: str | None = None
    description: str = ""
    model: str = "default"
    tools: list[str] = Field(default_factory=list)
    handoffs: list[str] = Field(default_factory=list)
    model_settings: ModelSettings = Field(default_factory=ModelSettings)
    role: str = ""
    goal: str = ""
    backstory: str = ""
    allow_delegation: bool = False


class _AgentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: list[_AgentSpec] = Field(min_length=1)


def _build(spec: _AgentSpec, tools: Mapping[str, Tool], names: set[str], path: Path) -> Agent:
    for tool in spec.tools:
        if tool not in tools:
            raise ConfigError(
                f"{path}: agent {spec.name!r} names the tool {tool!r}, expected one of "
                f"{sorted(tools)} (pass your tools to from_yaml(tools=...))"
            )
    for target in spec.handoffs:
        if target not in names:
            raise ConfigError(
                f"{path}: agent {spec.name!r} hands off to {target!r}, expected one of "
                f"{sorted(names)}"
            )
    return Agent(
        name=spec.name,
        instructions=spec.instructions,
        description=spec.description,
        model=spec.model,
        tools=[tools[name] for name in spec.tools],
        handoffs=[Handoff(target) for target in spec.handoffs],
        model_settings=spec.model_settings,
        role=spec.role,
        goal=spec.goal,
        backstory=spec.backstory,
        allow_delegation=spec.allow_delegation,
    )
