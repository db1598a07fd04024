"""``CrewState``: a crew between two tasks, JSON-serializable, so a paused crew can be
reviewed by a person and resumed in another process from the JSON and the crew definition.

It keeps one record per task (status, answer, attempts, usage, cost, the paused run of a
task waiting for a tool approval) and the decisions taken while paused:
``state.approve(task)`` accepts an answer under review (or lets the task's pending tool
calls run); ``state.revise(task, feedback)`` sends the answer back with the feedback (or
refuses the tool calls, telling the model why). The format is versioned like ``RunState``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from agentrig.agents import StateVersionError
from agentrig.errors import AgentrigError
from agentrig.usage import Usage

CREW_STATE_VERSION = 1
InterruptionKind = Literal["review", "approval"]


@dataclass
class CrewInterruption:
    """A task waiting for a person: its answer to review, or tool calls to approve."""

    task: str
    agent: str
    kind: InterruptionKind
    output: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)  # name, arguments, call_id


@dataclass
class TaskRecord:
    """What the crew knows of one task (the data behind a ``TaskOutput``)."""

    name: str
    agent: str = ""
    status: str = "pending"
    raw: str = ""
    structured: Any = None  # the output_type instance as JSON
    attempts: int = 0
    delegations: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    cost_micros: int = 0
    duration: float = 0.0
    error: str | None = None
    run_state: dict[str, Any] | None = None  # a run paused for a tool approval
    feedback: str | None = None  # a reviewer's revision, for the next attempt
    decision: dict[str, Any] | None = None  # a reviewer's approval, or a refusal of tool calls

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "timed_out", "skipped")

    def add_usage(self, usage: Usage, cost_micros: int) -> None:
        self.usage = (Usage(**self.usage) + usage).model_dump()
        self.cost_micros += cost_micros


@dataclass
class CrewState:
    """Everything a crew needs to continue. Made by the crew; decisions are yours."""

    crew: str
    inputs: dict[str, Any]
    tasks: dict[str, TaskRecord]
    status: str = "running"  # running | paused | completed | failed
    error: str | None = None
    reason: str | None = None  # why a failed crew was stopped: "budget" or "turns"
    run_id: str = field(default_factory=lambda: secrets.token_hex(8))

    # --- decisions while paused -----------------------------------------------------

    @property
    def interruptions(self) -> list[CrewInterruption]:
        """The tasks waiting for a decision that has not been taken yet."""
        waiting = []
        for record in self.tasks.values():
            if record.feedback is not None or record.decision is not None:
                continue
            if record.status == "awaiting_review":
                waiting.append(CrewInterruption(record.name, record.agent, "review", record.raw))
            elif record.status == "awaiting_approval" and record.run_state is not None:
                calls = [
                    {"call_id": c["call_id"], "name": c["name"], "arguments": c["arguments"]}
                    for c in record.run_state.get("pending", [])
                ]
                waiting.append(CrewInterruption(record.name, record.agent, "approval", "", calls))
        return waiting

    def approve(self, task: str) -> None:
        """Accept the answer of ``task`` (under review) or let its pending tool calls run."""
        self._waiting(task).decision = {"approved": True}

    def revise(self, task: str, feedback: str) -> None:
        """Send ``task``'s answer back with ``feedback`` (or refuse its tool calls with it)."""
        if not feedback.strip():
            raise ValueError(f"revise({task!r}) needs feedback saying what to change")
        record = self._waiting(task)
        if record.status == "awaiting_review":
            record.feedback = feedback
        else:
            record.decision = {"approved": False, "reason": feedback}

    def _waiting(self, task: str) -> TaskRecord:
        record = self.tasks.get(task)
        if record is None:
            raise AgentrigError(
                f"the crew {self.crew!r} has no task {task!r}: {sorted(self.tasks)}"
            )
        if record.status not in ("awaiting_review", "awaiting_approval"):
            waiting = [r.name for r in self.tasks.values() if r.status.startswith("awaiting")]
            raise AgentrigError(
                f"task {task!r} is {record.status}, not waiting for a decision "
                f"(waiting: {waiting or 'none'})"
            )
        return record

    # --- serialization --------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CREW_STATE_VERSION,
            "kind": "crew_state",
            "crew": self.crew,
            "run_id": self.run_id,
            "inputs": self.inputs,
            "status": self.status,
            "error": self.error,
            "reason": self.reason,
            "tasks": [asdict(record) for record in self.tasks.values()],
        }

    def to_string(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CrewState:
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("kind") != "crew_state":
            raise StateVersionError("not an agentrig crew state (no 'kind': 'crew_state')")
        if not isinstance(version, int) or version < 1:
            raise StateVersionError(f"not an agentrig crew state (version {version!r})")
        if version > CREW_STATE_VERSION:
            raise StateVersionError(
                f"crew state version {version} was written by a newer agentrig; this one "
                f"reads versions up to {CREW_STATE_VERSION}: upgrade agentrig to resume it"
            )
        records = [TaskRecord(**record) for record in data["tasks"]]
        return cls(
            crew=data["crew"],
            inputs=data["inputs"],
            tasks={record.name: record for record in records},
            status=data["status"],
            error=data.get("error"),
            reason=data.get("reason"),
            run_id=data["run_id"],
        )

    @classmethod
    def from_string(cls, text: str) -> CrewState:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateVersionError(f"not an agentrig crew state: invalid JSON ({exc})") from None
        return cls.from_json(data)
