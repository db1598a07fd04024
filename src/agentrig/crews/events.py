"""The events of a streamed crew (``crew.kickoff_streamed``), in the order they happen.

Each names its task, so a progress display (the CLI's, the server's stream) can follow
several tasks of a parallel crew at once. ``CrewFinished`` is last and carries the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentrig.usage import Usage

if TYPE_CHECKING:
    from agentrig.crews.result import CrewResult, TaskOutput


@dataclass(slots=True)
class CrewStarted:
    crew: str
    inputs: dict[str, Any]
    tasks: list[str]
    type: str = "crew.started"


@dataclass(slots=True)
class TaskStarted:
    task: str
    agent: str
    attempt: int
    type: str = "task.started"


@dataclass(slots=True)
class ModelCalled:
    """One model call of a task has returned (its tokens and cost, and the task's so far)."""

    task: str
    agent: str
    usage: Usage
    cost_micros: int
    task_cost_micros: int
    type: str = "task.model_called"


@dataclass(slots=True)
class TaskDelegated:
    """An agent handed a piece of work (``delegate_work``) or a question to a coworker."""

    task: str
    agent: str
    coworker: str
    kind: str  # delegate_work | ask_question
    request: str
    type: str = "task.delegated"


@dataclass(slots=True)
class TaskRetrying:
    """The guardrail (or a reviewer) sent the answer back; the task tries again."""

    task: str
    attempt: int
    feedback: str
    type: str = "task.retrying"


@dataclass(slots=True)
class TaskFinished:
    """A task ended: completed, failed, timed out, skipped or waiting for a person."""

    output: TaskOutput
    type: str = "task.finished"

    @property
    def task(self) -> str:
        return self.output.task


@dataclass(slots=True)
class CrewFinished:
    result: CrewResult
    type: str = "crew.finished"


CrewEvent = (
    CrewStarted | TaskStarted | ModelCalled | TaskDelegated | TaskRetrying | TaskFinished
) | CrewFinished
