"""Flows: long-running state machines of crews, agents and functions (see docs/flows.md).

A :class:`Flow` has states (each runs a crew, an agent, a function or asks a person) and
conditional transitions tried by priority; every run is a :class:`FlowRun` written to the
store at each step boundary, so it resumes after a crash or a person's decision, and its
:class:`FlowResult` has the history, usage and cost of every step.
"""

from agentrig.flows.conditions import (
    Always,
    And,
    Check,
    Condition,
    Not,
    OnFailure,
    OnSuccess,
    Or,
    OutputContains,
    VariableEquals,
)
from agentrig.flows.engine import NotResumable
from agentrig.flows.events import (
    FlowEvent,
    FlowFinished,
    FlowStarted,
    StateEntered,
    StateFinished,
    StepEvent,
    TransitionTaken,
)
from agentrig.flows.flow import Flow, FlowInputError
from agentrig.flows.graph import FlowState, Transition
from agentrig.flows.records import FlowInterruption, FlowResult, FlowRun, StepRecord
from agentrig.flows.steps import FlowContext, Human, StepOutput
from agentrig.flows.streaming import FlowStream

__all__ = [
    "Always",
    "And",
    "Check",
    "Condition",
    "Flow",
    "FlowContext",
    "FlowEvent",
    "FlowFinished",
    "FlowInputError",
    "FlowInterruption",
    "FlowResult",
    "FlowRun",
    "FlowStarted",
    "FlowState",
    "FlowStream",
    "Human",
    "Not",
    "NotResumable",
    "OnFailure",
    "OnSuccess",
    "Or",
    "OutputContains",
    "StateEntered",
    "StateFinished",
    "StepEvent",
    "StepOutput",
    "StepRecord",
    "Transition",
    "TransitionTaken",
    "VariableEquals",
]
