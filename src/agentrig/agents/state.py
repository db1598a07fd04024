"""``RunState``: everything a run needs to continue, JSON-serializable at every step boundary.

A paused run (a tool waiting for approval) is saved with ``state.to_json()`` and resumed,
in this process or another, with ``RunState.from_json(data, agent)`` and
``Runner.resume(state)``. The format is versioned: a state written by a newer agentrig is
refused with a clear error rather than misread.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agentrig.errors import AgentrigError
from agentrig.items import FunctionCall, Item, dump_items, parse_items
from agentrig.usage import Usage

if TYPE_CHECKING:
    from agentrig.agents.agent import Agent

STATE_VERSION = 1

Status = Literal["running", "paused", "finished"]


class StateVersionError(AgentrigError):
    """A saved run state this version of agentrig cannot read."""


@dataclass
class Interruption:
    """A tool call waiting for a person's decision."""

    call_id: str
    name: str
    arguments: str
    agent: str


@dataclass
class RunState:
    """The run between two steps. ``conversation`` is what the current agent's model sees;
    ``new_items`` is everything this run produced (what its session keeps)."""

    agent: Agent
    conversation: list[Item]
    context: dict[str, Any]
    max_turns: int
    input_items: list[Item] = field(default_factory=list)
    new_items: list[Item] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_micros: int = 0
    turn: int = 0
    status: Status = "running"
    pending: list[FunctionCall] = field(default_factory=list)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    tool_state: dict[str, dict[str, Any]] = field(default_factory=dict)
    final_output: Any = None
    output_retries: int = 0
    persisted: int = 0  # how many of new_items the session already has
    session_id: str | None = None
    run_id: str = field(default_factory=lambda: secrets.token_hex(8))

    # --- approvals ------------------------------------------------------------------

    @property
    def interruptions(self) -> list[Interruption]:
        """Pending calls of tools that need approval and have no decision yet."""
        waiting = []
        for call in self.pending:
            tool = self.agent.tool_named(call.name)
            if tool is not None and tool.needs_approval and call.call_id not in self.decisions:
                waiting.append(
                    Interruption(call.call_id, call.name, call.arguments, self.agent.name)
                )
        return waiting

    def approve(self, call: Interruption | str) -> None:
        """Let the call run when the run resumes."""
        self.decisions[_call_id(call)] = {"approved": True}

    def reject(self, call: Interruption | str, reason: str = "") -> None:
        """Refuse the call; the model is told so (with ``reason``) when the run resumes."""
        self.decisions[_call_id(call)] = {"approved": False, "reason": reason}

    # --- serialization --------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        output = self.final_output
        if hasattr(output, "model_dump"):
            output = output.model_dump(mode="json")
        return {
            "version": STATE_VERSION,
            "run_id": self.run_id,
            "agent": self.agent.name,
            "conversation": dump_items(self.conversation),
            "input_items": dump_items(self.input_items),
            "new_items": dump_items(self.new_items),
            "context": self.context,
            "max_turns": self.max_turns,
            "usage": self.usage.model_dump(),
            "cost_micros": self.cost_micros,
            "turn": self.turn,
            "status": self.status,
            "pending": dump_items(self.pending),
            "decisions": self.decisions,
            "tool_state": self.tool_state,
            "final_output": output,
            "output_retries": self.output_retries,
            "persisted": self.persisted,
            "session_id": self.session_id,
        }

    def to_string(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any], agent: Agent) -> RunState:
        """Load a saved state; ``agent`` is the run's starting agent (or any agent from
        which the saved current agent is reachable through handoffs)."""
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            raise StateVersionError(f"not an agentrig run state (version {version!r})")
        if version > STATE_VERSION:
            raise StateVersionError(
                f"run state version {version} was written by a newer agentrig; this one "
                f"reads versions up to {STATE_VERSION}: upgrade agentrig to resume it"
            )
        agents = agent.reachable()
        name = data["agent"]
        if name not in agents:
            raise AgentrigError(
                f"the saved run was with agent {name!r}, which is not reachable from "
                f"{agent.name!r} (known: {sorted(agents)})"
            )
        pending = parse_items(data["pending"])
        return cls(
            agent=agents[name],
            conversation=parse_items(data["conversation"]),
            context=data["context"],
            max_turns=data["max_turns"],
            input_items=parse_items(data["input_items"]),
            new_items=parse_items(data["new_items"]),
            usage=Usage(**data["usage"]),
            cost_micros=data["cost_micros"],
            turn=data["turn"],
            status=data["status"],
            pending=[call for call in pending if isinstance(call, FunctionCall)],
            decisions=data["decisions"],
            tool_state=data["tool_state"],
            final_output=data["final_output"],
            output_retries=data["output_retries"],
            persisted=data["persisted"],
            session_id=data["session_id"],
            run_id=data["run_id"],
        )

    @classmethod
    def from_string(cls, text: str, agent: Agent) -> RunState:
        return cls.from_json(json.loads(text), agent)


def _call_id(call: Interruption | str) -> str:
    return call if isinstance(call, str) else call.call_id
