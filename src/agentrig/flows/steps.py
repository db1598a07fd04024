"""What a state runs: a crew, an agent, a Python function, or a question to a person.

Each kind of step turns its work into a :class:`StepOutcome` (completed, failed or
paused, with the output, usage and cost), forwards the nested crew's or agent's events,
and knows how to continue from its paused state once people have decided. A step that
raises fails (its error is the output, so ``OnFailure`` can route it); cancelling is
never swallowed.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agentrig.agents import Agent, Runner, RunState
from agentrig.crews import Crew, CrewResult, CrewState
from agentrig.crews.result import as_json
from agentrig.errors import AgentrigError
from agentrig.flows.records import FlowInterruption, PausedStep, StepRecord
from agentrig.usage import Usage

Emit = Callable[[Any], None]


@dataclass
class FlowContext:
    """What a function step sees: the flow's ``variables`` (an instance of its model, or a
    dict), the run's ``inputs``, the last completed step's ``output``, the ``history``."""

    flow: str
    run_id: str
    state: str
    visit: int
    variables: Any
    inputs: dict[str, Any]
    output: str
    history: list[StepRecord]


@dataclass
class StepOutput:
    """What a function step may return to give both an output and variable updates."""

    output: str = ""
    updates: dict[str, Any] = field(default_factory=dict)
    structured: Any = None


@dataclass
class StepOutcome:
    status: str  # completed | failed | paused
    output: str = ""
    structured: Any = None
    updates: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_micros: int = 0
    paused: PausedStep | None = None
    interruptions: list[FlowInterruption] = field(default_factory=list)


class Human:
    """A step that asks a person and waits (hours or days: the run is stored ``paused``).
    ``prompt`` is filled from the variables (and ``{output}``, the last output); the
    person's ``reply`` is the step's output."""

    kind = "human"

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt

    def __repr__(self) -> str:
        return f"Human({self.prompt!r})"


def failure(exc: BaseException) -> StepOutcome:
    return StepOutcome("failed", output=f"{type(exc).__name__}: {exc}", error=str(exc) or None)


def fill(template: str, context: FlowContext) -> str:
    """``template`` with ``{name}`` replaced by the variables and ``{output}``."""
    values = {**_as_dict(context.variables), "output": context.output}
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        raise AgentrigError(
            f"state {context.state!r}: cannot fill {template!r}: {exc!r} "
            f"(variables: {sorted(values)})"
        ) from None


def _as_dict(variables: Any) -> dict[str, Any]:
    if isinstance(variables, BaseModel):
        return variables.model_dump(mode="json")
    return dict(variables)


# --- functions ----------------------------------------------------------------------


async def run_function(function: Callable[..., Any], context: FlowContext) -> StepOutcome:
    """Call ``function(context)`` (awaited if async); its return value becomes the output
    (a ``str``), variable updates (a ``dict``, or the variables' model), or both
    (a :class:`StepOutput`)."""
    value = function(context)
    if inspect.isawaitable(value):
        value = await value
    if value is None:
        return StepOutcome("completed")
    if isinstance(value, str):
        return StepOutcome("completed", output=value)
    if isinstance(value, StepOutput):
        return StepOutcome(
            "completed", value.output, as_json(value.structured), dict(value.updates)
        )
    if isinstance(value, BaseModel):
        return StepOutcome("completed", updates=value.model_dump())
    if isinstance(value, Mapping):
        return StepOutcome("completed", updates=dict(value))
    raise AgentrigError(
        f"state {context.state!r}: {getattr(function, '__name__', function)} returned "
        f"{type(value).__name__}; a step function returns None, a str, a dict of variable "
        "updates, the variables' model or a StepOutput"
    )


# --- crews --------------------------------------------------------------------------


def crew_inputs(context: FlowContext) -> dict[str, Any]:
    """The crew's kickoff inputs: the variables, and ``output`` (the last step's)."""
    return {**_as_dict(context.variables), "output": context.output}


async def run_crew(
    crew: Crew, context: FlowContext, emit: Emit, paused: PausedStep | None
) -> StepOutcome:
    stream = (
        crew.resume_streamed(CrewState.from_json(paused.data))
        if paused is not None
        else crew.kickoff_streamed(crew_inputs(context))
    )
    async for event in stream.events():
        emit(event)
    return crew_outcome(context.state, stream.result)


def crew_outcome(state: str, result: CrewResult) -> StepOutcome:
    outcome = StepOutcome(
        result.status,
        output=result.output if result.status == "completed" else (result.error or ""),
        structured=as_json(result.structured),
        error=result.error,
        usage=result.usage,
        cost_micros=result.cost_micros,
    )
    if result.status == "paused":
        outcome.output = ""
        outcome.paused = PausedStep(state, "crew", result.state.to_json())
        outcome.interruptions = [
            FlowInterruption(state, i.kind, i.task, i.agent, i.output, list(i.tool_calls))
            for i in result.interruptions
        ]
    return outcome


# --- agents -------------------------------------------------------------------------


async def run_agent(
    agent: Agent,
    text: str,
    context: FlowContext,
    emit: Emit,
    paused: PausedStep | None,
    router: Any,
) -> StepOutcome:
    if paused is not None:
        state = RunState.from_json(paused.data, agent)
        for decision in paused.decisions:
            if decision.get("approved"):
                state.approve(decision["target"])
            else:
                state.reject(decision["target"], decision.get("feedback", ""))
        result = await Runner.resume(state, router=router)
    else:
        stream = Runner.run_streamed(agent, text, router=router)
        async for event in stream.events():
            emit(event)
        result = stream.result
    if result.interruptions:
        calls = [
            FlowInterruption(
                context.state,
                "approval",
                call.call_id,
                call.agent,
                tool_calls=[
                    {"call_id": call.call_id, "name": call.name, "arguments": call.arguments}
                ],
            )
            for call in result.interruptions
        ]
        return StepOutcome(
            "paused",
            usage=result.usage,
            cost_micros=result.cost_micros,
            paused=PausedStep(context.state, "agent", result.state.to_json()),
            interruptions=calls,
        )
    final = result.final_output
    structured = as_json(final) if isinstance(final, BaseModel) else None
    output = json.dumps(structured) if structured is not None else str(final or "")
    return StepOutcome(
        "completed", output, structured, usage=result.usage, cost_micros=result.cost_micros
    )


def agent_input(context: FlowContext) -> str:
    """An agent's default input: the last output, or the variables for the first step."""
    if context.output:
        return context.output
    values = _as_dict(context.variables)
    return "\n".join(f"{name}: {value}" for name, value in values.items()) or context.state


# --- people -------------------------------------------------------------------------


def ask_human(human: Human, context: FlowContext, paused: PausedStep | None) -> StepOutcome:
    if paused is None:
        question = fill(human.prompt, context)
        return StepOutcome(
            "paused",
            paused=PausedStep(context.state, "human", {"prompt": question}),
            interruptions=[FlowInterruption(context.state, "human", context.state, "", question)],
        )
    reply = next(d.get("reply", "") for d in paused.decisions)
    return StepOutcome("completed", output=reply)
