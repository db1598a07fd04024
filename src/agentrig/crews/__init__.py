"""Crews: role-playing agents working through tasks together (CrewAI's vocabulary).

A :class:`Crew` runs its :class:`Task` s in a :class:`Process` (sequential, parallel or
hierarchical), every task a ``Runner`` run of an :class:`~agentrig.agents.Agent`, every
model call through the router; ``kickoff`` returns a :class:`CrewResult`, and a paused
crew's :class:`CrewState` resumes it. See docs/crews.md.
"""

from agentrig.crews.crew import Crew
from agentrig.crews.events import (
    CrewEvent,
    CrewFinished,
    CrewStarted,
    ModelCalled,
    TaskDelegated,
    TaskFinished,
    TaskRetrying,
    TaskStarted,
)
from agentrig.crews.guardrails import GuardrailVerdict, max_words
from agentrig.crews.meter import CrewLimitReached
from agentrig.crews.process import Process
from agentrig.crews.prompts import CrewPrompts
from agentrig.crews.result import CrewResult, TaskOutput
from agentrig.crews.state import CrewInterruption, CrewState
from agentrig.crews.streaming import CrewStream
from agentrig.crews.task import MissingInput, Task

__all__ = [
    "Crew",
    "CrewEvent",
    "CrewFinished",
    "CrewInterruption",
    "CrewLimitReached",
    "CrewPrompts",
    "CrewResult",
    "CrewStarted",
    "CrewState",
    "CrewStream",
    "GuardrailVerdict",
    "MissingInput",
    "ModelCalled",
    "Process",
    "Task",
    "TaskDelegated",
    "TaskFinished",
    "TaskOutput",
    "TaskRetrying",
    "TaskStarted",
    "max_words",
]
