"""``model: "flow:<name>"`` on ``/v1/responses``: a flow answers a response.

The inputs come from the request's ``input``: its user text is the flow's single required
input (or its ``input`` variable, when it requires none), unless the text is a JSON
object, whose keys are then the named inputs (``{"topic": "AI agents", "drafts": 2}``).
An input that is missing, unknown or of the wrong type is a 400 naming it (``code:
invalid_input``), before any model call. The run is a stored flow run like any other (see
``/api/v1/flows/runs``), written at every step boundary. Its progress is in the output as
``reasoning`` items (a state entered, a step of its crew, a state finished, a transition
taken), streamed as they happen; the last completed step's output is the response's
message. A flow that pauses for a person gives an ``incomplete`` response (reason
``flow_paused``) whose message says what waits and where to decide it
(``/api/v1/flows/runs/{id}/reply``, ``/approve`` or ``/revise``; the run is then finished
by a job); a failed flow a ``failed`` response with its progress (``error.code``:
``no_transition``, ``max_visits_exceeded``, ``max_steps_exceeded`` or ``flow_failed``).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from agentrig.errors import AgentrigError
from agentrig.flows import (
    Flow,
    FlowInputError,
    FlowInterruption,
    FlowRun,
    StateEntered,
    StateFinished,
    StepEvent,
    TransitionTaken,
)
from agentrig.flows.catalog import UnknownFlow
from agentrig.flows.progress import describe
from agentrig.items import Item, Reasoning
from agentrig.server.crew_responses import PROGRESS as CREW_PROGRESS
from agentrig.server.crew_responses import crew_progress
from agentrig.server.errors import APIError
from agentrig.server.progress_items import (
    add_output,
    answer,
    named_inputs,
    progress_item,
    request_text,
)

if TYPE_CHECKING:
    from agentrig.server.app import ServerState
    from agentrig.server.sse import ResponseEventStream

PREFIX = "flow:"
CODES = {
    "no_transition": "no_transition",
    "max_visits": "max_visits_exceeded",
    "max_steps": "max_steps_exceeded",
}


def flow_inputs(flow: Flow, items: list[Item]) -> dict[str, Any]:
    """The run's inputs of a request's input items (see the module's docstring)."""
    text = request_text(items)
    named = named_inputs(text)
    if named is not None:
        return named
    required = flow.inputs
    if len(required) == 1:
        return {required[0]: text}
    if not required:
        return {"input": text} if "input" in flow.variable_names else {}
    example = json.dumps(dict.fromkeys(required, "..."))
    raise FlowInputError(
        f"flow {flow.name!r} needs the inputs {required}: give them as a JSON object, "
        f"such as {example}"
    )


def prepare_flow(state: ServerState, tenant: str, model: str, items: list[Item]) -> FlowRun:
    """A fresh run (not stored yet) of the flow ``model`` names on these items, or a 400."""
    try:
        flow = state.flows.get(model[len(PREFIX) :], tenant)
        return flow.new_run(flow_inputs(flow, items), tenant=tenant)
    except UnknownFlow as exc:
        raise APIError(400, str(exc), param="model", code="model_not_found") from None
    except FlowInputError as exc:
        raise APIError(400, str(exc), param="input", code="invalid_input") from None
    except AgentrigError as exc:  # the flow's YAML is wrong: the server's fault
        raise APIError(500, str(exc), type="server_error") from None


def flow_progress(event: Any) -> Reasoning | None:
    """The reasoning item of a flow event worth a line (``None`` for the others), in the
    words of ``agentrig flow run``; a crew's step is prefixed with its state."""
    if isinstance(event, StepEvent):
        if isinstance(event.event, CREW_PROGRESS):
            return crew_progress(event.event, prefix=f"{event.state} · ")
        return None
    if isinstance(event, StateEntered | StateFinished | TransitionTaken):
        line = describe(event)
        return None if line is None else progress_item(line.strip())
    return None


def _waiting(interruption: FlowInterruption) -> str:
    where = f"in state {interruption.state!r}"
    if interruption.kind == "human":
        return f"a reply {where} to {interruption.output!r}"
    if interruption.kind == "review":
        return f"a review of task {interruption.target!r} {where}"
    names = ", ".join(call["name"] for call in interruption.tool_calls)
    return f"an approval of the call {interruption.target!r} to {names} {where}"


async def run_flow_turn(
    state: ServerState, turn: Any, stream: ResponseEventStream | None, send: Any
) -> None:
    """Run the turn's flow, filling its output, usage, cost and status. A run already
    stored (a background job retried after its worker died) resumes from its last step
    boundary instead of starting again; a cancelled one is stored ``failed`` (reason
    ``cancelled``) as of its last step boundary, not left ``running``."""
    flow = state.flows.get(turn.body.model[len(PREFIX) :], turn.tenant)
    store = state.flow_runs.runs
    stored = await store.get(turn.flow_run.run_id, turn.tenant)
    record = turn.flow_run if stored is None else FlowRun.from_json(stored.data)
    running = flow.resume_streamed(record, store=store)  # a fresh record: stored, then run
    try:
        async for event in running.events():
            item = flow_progress(event)
            if item is not None:
                add_output(turn, item, stream, send)
    except asyncio.CancelledError:
        if running.task is not None:  # its last write lands before this one
            running.task.cancel()
            await asyncio.gather(running.task, return_exceptions=True)
        record.status, record.reason = "failed", "cancelled"
        record.error = "the response running the flow was cancelled"
        await store.save(record.to_json(), only_if=("running",))
        raise
    result = running.result
    turn.usage, turn.cost_micros = result.usage, result.cost_micros
    text = result.output
    if result.status == "paused":
        url = f"/api/v1/flows/runs/{result.run_id}"
        waiting = "; ".join(_waiting(i) for i in result.interruptions)
        text = (
            f"The flow {flow.name!r} (run {result.run_id}) is waiting for {waiting}. Answer "
            f"with POST {url}/reply, or decide with POST {url}/approve or /revise; "
            f"GET {url} follows it."
        )
        turn.status, turn.incomplete = "incomplete", {"reason": "flow_paused"}
    elif result.status == "failed":
        turn.status = "failed"
        code = CODES.get(result.reason or "", "flow_failed")
        turn.error = {"code": code, "message": result.error or "the flow failed"}
        text = ""
    else:
        turn.status = "completed"
    answer(turn, text, stream, send)
