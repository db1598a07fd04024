"""The events of a streamed flow (``flow.run_streamed``), in the order they happen.

``FlowStarted``; for each step ``StateEntered``, the nested crew or agent events wrapped
in ``StepEvent`` (tagged with the state), ``StateFinished`` and ``TransitionTaken`` (with
the condition that held); ``FlowFinished`` is last and carries the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentrig.flows.records import FlowResult, StepRecord


@dataclass(slots=True)
class FlowStarted:
    flow: str
    run_id: str
    state: str  # the state it starts (or resumes) at
    resumed: bool = False
    type: str = "flow.started"


@dataclass(slots=True)
class StateEntered:
    state: str
    visit: int
    type: str = "flow.state_entered"


@dataclass(slots=True)
class StepEvent:
    """An event of the crew (a ``CrewEvent``) or agent (a ``RunEvent``) a state runs."""

    state: str
    event: Any
    type: str = "flow.step_event"


@dataclass(slots=True)
class StateFinished:
    step: StepRecord
    type: str = "flow.state_finished"

    @property
    def state(self) -> str:
        return self.step.state


@dataclass(slots=True)
class TransitionTaken:
    source: str
    target: str
    condition: str
    priority: int
    type: str = "flow.transition"


@dataclass(slots=True)
class FlowFinished:
    result: FlowResult
    type: str = "flow.finished"


FlowEvent = FlowStarted | StateEntered | StepEvent | StateFinished | TransitionTaken | FlowFinished
