"""Running a flow: one step at a time, the record written at every step boundary.

The loop is the flow's own idea (a state machine over the graph), so it is written here
rather than borrowed: for the state ``run.current`` it checks the guards (``max_visits``,
``max_steps``), runs the step, applies its variable updates, appends it to the history,
takes the first transition that holds (by priority, then declaration order) and writes
the record once. A process killed in the middle of a step leaves the record as it was
before that step, so a resumed run runs it again from its start and never repeats a
finished one. A paused step is written with its crew's or agent's state and continues
from it once people have decided.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from agentrig.errors import AgentrigError
from agentrig.flows.events import (
    FlowStarted,
    StateEntered,
    StateFinished,
    StepEvent,
    TransitionTaken,
)
from agentrig.flows.graph import FlowState
from agentrig.flows.records import FlowResult, FlowRun, StepRecord, now
from agentrig.flows.steps import (
    FlowContext,
    StepOutcome,
    agent_input,
    ask_human,
    failure,
    fill,
    run_agent,
    run_crew,
    run_function,
)

if TYPE_CHECKING:
    from agentrig.flows.flow import Flow

Emit = Callable[[Any], None]
_QUOTE = 300  # characters of a step's output quoted in an error


class Recorder(Protocol):
    """Where a run's record goes at every step boundary (the store, or nowhere)."""

    async def save(self, run: FlowRun) -> None: ...


class NoRecorder:
    async def save(self, run: FlowRun) -> None:
        return None


async def drive(flow: Flow, run: FlowRun, emit: Emit, recorder: Recorder) -> FlowResult:
    """Run ``run`` from ``run.current`` to its end or its next pause."""
    resumed = bool(run.history) or run.paused is not None
    assert run.current is not None
    run.status, run.error, run.reason = "running", None, None
    await recorder.save(run)  # a new run is stored; a resumed one is running again
    emit(FlowStarted(flow.name, run.run_id, run.current, resumed))
    while run.status == "running":
        await _step(flow, run, emit)
        await recorder.save(run)
    return result_of(flow, run)


async def _step(flow: Flow, run: FlowRun, emit: Emit) -> None:
    name = run.current
    assert name is not None
    state = flow.graph.states[name]
    paused = run.paused if run.paused is not None and run.paused.state == name else None
    if state.run is None:  # a final state with nothing to run
        run.status = "completed"
        return
    visit = run.visits.get(name, 0) + 1
    if paused is None and _guarded(flow, run, state, visit):
        return
    emit(StateEntered(name, visit))
    context = FlowContext(
        flow.name,
        run.run_id,
        name,
        visit,
        flow.typed(run.variables),
        run.inputs,
        run.output,
        run.history,
    )
    started = paused.started_at if paused is not None else now()
    outcome = await _run(flow, state, context, lambda event: emit(StepEvent(name, event)), paused)
    if outcome.status == "paused":
        assert outcome.paused is not None
        outcome.paused.started_at = started  # a crew's or agent's totals include the pause's
        outcome.paused.usage, outcome.paused.cost_micros = outcome.usage, outcome.cost_micros
        run.paused, run.interruptions, run.status = outcome.paused, outcome.interruptions, "paused"
        return
    run.paused, run.interruptions = None, []
    if outcome.status == "completed":
        error = _apply_updates(flow, state, outcome, run)
        if error is not None:
            outcome.status, outcome.error, outcome.output = "failed", error, error
    step = StepRecord(
        name,
        visit,
        outcome.status,  # type: ignore[arg-type]
        outcome.output,
        outcome.structured,
        outcome.error,
        started,
        now(),
        outcome.usage,
        outcome.cost_micros,
    )
    run.history.append(step)
    run.visits[name] = visit
    if state.final:
        emit(StateFinished(step))
        run.status = "completed" if step.status == "completed" else "failed"
        run.error = None if step.status == "completed" else f"state {name!r}: {step.error}"
        return
    outgoing = flow.graph.outgoing(name)
    uses = any(t.condition.uses_variables for t in outgoing)
    variables = flow.typed(run.variables) if uses else run.variables
    for transition in outgoing:
        try:
            holds = transition.condition.holds(step, variables)
        except Exception as exc:
            emit(StateFinished(step))
            _fail(
                run,
                "condition",
                f"the condition {transition.condition.label!r} of "
                f"{name!r} -> {transition.target!r} raised {type(exc).__name__}: {exc}",
            )
            return
        if holds:
            step.next_state, step.condition = transition.target, transition.condition.label
            emit(StateFinished(step))
            emit(TransitionTaken(name, transition.target, step.condition, transition.priority))
            run.current = transition.target
            return
    emit(StateFinished(step))
    quoted = step.output if len(step.output) <= _QUOTE else step.output[:_QUOTE] + "…"
    _fail(
        run,
        "no_transition",
        f"state {name!r} ended {step.status} and none of its transitions holds "
        f"({[t.condition.label for t in flow.graph.outgoing(name)]}); its output: {quoted!r}",
    )


async def _run(
    flow: Flow, state: FlowState, context: FlowContext, emit: Emit, paused: Any
) -> StepOutcome:
    kind = state.kind
    try:
        if kind == "crew":
            return await run_crew(state.run, context, emit, paused)
        if kind == "agent":
            text = fill(state.input, context) if state.input else agent_input(context)
            return await run_agent(state.run, text, context, emit, paused, flow.router)
        if kind == "human":
            return ask_human(state.run, context, paused)
        return await run_function(state.run, context)
    except Exception as exc:  # the step failed; OnFailure may route it (never a cancel)
        return failure(exc)


def _guarded(flow: Flow, run: FlowRun, state: FlowState, visit: int) -> bool:
    """Fail the run if entering ``state`` breaks ``max_visits`` or ``max_steps``."""
    if state.max_visits is not None and visit > state.max_visits:
        _fail(
            run,
            "max_visits",
            f"state {state.name!r} would run a {_ordinal(visit)} time (max_visits="
            f"{state.max_visits}); history: {_path(run)}",
        )
        return True
    if len(run.history) >= flow.max_steps:
        _fail(
            run,
            "max_steps",
            f"flow {flow.name!r} ran {len(run.history)} steps (max_steps={flow.max_steps}) "
            f"without reaching a final state; history: {_path(run)}",
        )
        return True
    return False


def _apply_updates(flow: Flow, state: FlowState, outcome: StepOutcome, run: FlowRun) -> str | None:
    """Merge the step's variable updates; an error naming the variable if one is wrong."""
    updates = dict(outcome.updates)
    if state.output_to:
        updates[state.output_to] = outcome.output
    if state.updates:
        structured = outcome.structured
        if not isinstance(structured, dict):
            return (
                f"state {state.name!r} maps a structured output onto variables, but its step "
                "gave none (give its crew's last task or its agent an output_type)"
            )
        mapping = (
            {key: key for key in structured if key in flow.variable_names}
            if state.updates is True
            else dict(state.updates)
        )
        for variable, key in mapping.items():
            if key not in structured:
                return (
                    f"state {state.name!r}: the structured output has no field {key!r} for "
                    f"the variable {variable!r}: {sorted(structured)}"
                )
            updates[variable] = structured[key]
    if not updates:
        return None
    unknown = [key for key in updates if flow.variable_names and key not in flow.variable_names]
    if unknown:
        return (
            f"state {state.name!r} set the unknown variables {unknown}; the flow's variables: "
            f"{sorted(flow.variable_names)}"
        )
    try:
        run.variables = flow.validate_variables({**run.variables, **updates})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"state {state.name!r} set the variable {where!r} wrongly: {error['msg']}"
    return None


def _fail(run: FlowRun, reason: str, error: str) -> None:
    run.status, run.reason, run.error = "failed", reason, error


def _path(run: FlowRun) -> str:
    return " -> ".join(f"{step.state} ({step.status})" for step in run.history) or "none"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def result_of(flow: Flow, run: FlowRun) -> FlowResult:
    return FlowResult(
        status=run.status,  # type: ignore[arg-type]
        final_state=run.current,
        output=run.output,
        variables=flow.typed(run.variables),
        history=list(run.history),
        usage=run.usage,
        cost_micros=run.cost_micros,
        interruptions=run.waiting,
        run_id=run.run_id,
        run=run,
        error=run.error,
        reason=run.reason,
    )


class NotResumable(AgentrigError):
    """A run that cannot go on: completed, still waiting for a decision, or another flow's."""
