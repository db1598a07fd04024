"""What a crew returns: a :class:`TaskOutput` per task and the :class:`CrewResult`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agentrig.usage import Usage

if TYPE_CHECKING:
    from agentrig.crews.state import CrewInterruption, CrewState

TaskStatus = Literal[
    "pending", "completed", "failed", "timed_out", "skipped", "awaiting_review",
    "awaiting_approval",
]  # fmt: skip
CrewStatus = Literal["completed", "failed", "paused"]


def as_json(value: Any) -> Any:
    """A structured output (a pydantic model) as JSON data; anything else as it is."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


@dataclass
class TaskOutput:
    """One task's outcome. ``raw`` is the answer's text (JSON for a structured one);
    ``structured`` its ``output_type`` instance; ``cost_micros`` is in millionths of a
    dollar (``cost`` in dollars), counting every model call of the task, delegations and
    guardrail agents included."""

    task: str
    agent: str
    description: str = ""
    raw: str = ""
    structured: Any = None
    status: TaskStatus = "pending"
    attempts: int = 0
    delegations: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_micros: int = 0
    duration: float = 0.0
    error: str | None = None

    @property
    def cost(self) -> float:
        return self.cost_micros / 1_000_000

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "agent": self.agent,
            "status": self.status,
            "raw": self.raw,
            "structured": as_json(self.structured),
            "attempts": self.attempts,
            "delegations": self.delegations,
            "usage": self.usage.model_dump(),
            "cost_usd": self.cost,
            "duration": round(self.duration, 3),
            "error": self.error,
        }

    def __str__(self) -> str:
        return self.raw


@dataclass
class CrewResult:
    """The crew's outcome. ``output`` is the final task's text and ``structured`` its
    ``output_type`` instance; a paused crew lists its ``interruptions`` and ``state``
    resumes it (``crew.resume(state)``); a failed one says why in ``error`` and keeps the
    outputs, usage and cost of what finished."""

    output: str
    structured: Any
    tasks_output: list[TaskOutput]
    usage: Usage
    cost_micros: int
    status: CrewStatus
    state: CrewState
    error: str | None = None
    reason: str | None = None  # a crew stopped by a limit: "budget" or "turns"
    interruptions: list[CrewInterruption] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return self.cost_micros / 1_000_000

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (what ``agentrig crew run --json`` prints and the API returns)."""
        return {
            "crew": self.state.crew,
            "run_id": self.state.run_id,
            "status": self.status,
            "error": self.error,
            "reason": self.reason,
            "output": self.output,
            "structured": as_json(self.structured),
            "usage": self.usage.model_dump(),
            "cost_usd": self.cost,
            "tasks": [output.to_json() for output in self.tasks_output],
            "interruptions": [asdict(i) for i in self.interruptions],
        }

    def task(self, name: str) -> TaskOutput:
        """The output of the task called ``name``."""
        for output in self.tasks_output:
            if output.task == name:
                return output
        raise KeyError(
            f"no task {name!r}: the crew's tasks are {[o.task for o in self.tasks_output]}"
        )

    def __str__(self) -> str:
        return self.output
